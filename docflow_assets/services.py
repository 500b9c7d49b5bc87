"""Start and stop local processes: the Dagster and API servers the demo leaves running, runs
as processes of their own, and a throw-away broker for Celery workers."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    command: list[str]
    ready_url: str


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def start(service: Service, run_dir: Path, env: dict[str, str], timeout: float = 180) -> None:
    """Start a service in its own session (it outlives this process) and wait until it answers."""
    if port_open(service.port):
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    log = (run_dir / f"{service.name}.log").open("ab")
    process = subprocess.Popen(
        service.command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    (run_dir / f"{service.name}.pid").write_text(str(process.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{service.name} exited; see {run_dir / service.name}.log")
        try:
            if httpx.get(service.ready_url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise TimeoutError(f"{service.name} did not answer at {service.ready_url} in {timeout:.0f}s")


# `dagster dev` and its children can ignore SIGTERM for over a minute after their daemon
# threads stopped: what is still there after this long is killed.
STOP_GRACE_SECONDS = 20.0


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def stop_all(run_dir: Path, grace: float = STOP_GRACE_SECONDS) -> list[str]:
    """Stop every service started in ``run_dir``: SIGTERM to each one's process group, then,
    after ``grace`` seconds, SIGKILL to whatever of the groups is left."""
    stopped, groups = [], []
    for pid_file in sorted(run_dir.glob("*.pid")):
        try:
            group = int(pid_file.read_text())
            os.killpg(group, signal.SIGTERM)
            stopped.append(pid_file.stem)
            groups.append(group)
        except (ProcessLookupError, ValueError):
            pass
        pid_file.unlink()
    deadline = time.monotonic() + grace
    while groups and time.monotonic() < deadline:
        groups = [group for group in groups if _group_alive(group)]
        time.sleep(0.5)
    for group in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    return stopped


def dagster_service(port: int, workspace: Path) -> Service:
    return Service(
        "dagster",
        port,
        [
            sys.executable,
            "-m",
            "dagster",
            "dev",
            "-w",
            str(workspace),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        f"http://127.0.0.1:{port}/server_info",
    )


def api_service(port: int) -> Service:
    return Service(
        "api",
        port,
        [
            sys.executable,
            "-m",
            "uvicorn",
            "docflow_api.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        f"http://127.0.0.1:{port}/health",
    )


def job_command(job: str, run_config: Path, tags: dict[str, str]) -> list[str]:
    """A run of ``job`` of the Docflow code location as a process of its own (`dagster job
    execute`): the process is the run worker, which with Celery hands the steps on."""
    return [
        str(Path(sys.executable).parent / "dagster"),
        "job",
        "execute",
        "-m",
        "docflow_assets.definitions",
        "-j",
        job,
        "-c",
        str(run_config),
        "--tags",
        json.dumps(tags),
    ]


LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432"


@contextmanager
def postgres_database(purpose: str, server: str = LOCAL_POSTGRES) -> Iterator[str]:
    """A throw-away database of its own on a PostgreSQL server (the local one, trust auth), as
    a URL, dropped afterwards."""
    import psycopg2

    name = f"docflow_{purpose}_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(f"{server}/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


@contextmanager
def rabbitmq_vhost(prefix: str) -> Iterator[str]:
    """A throw-away virtual host on the local RabbitMQ (``rabbitmqctl``), as a broker URL:
    queues of its own, deleted afterwards."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", name], check=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", name, "guest", ".*", ".*", ".*"],
        check=True,
    )
    try:
        yield f"pyamqp://guest@127.0.0.1:5672/{name}"
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", name], check=False)
