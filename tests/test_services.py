"""`docflow stop` stops everything the demo started: the whole `dagster dev` tree (webserver,
daemon, code servers) and the API, even where they ignore SIGTERM."""

from __future__ import annotations

import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from docflow_assets import services
from docflow_assets.demo_run import REPO_ROOT, prepare_dagster_home
from tests.servers import BIN, free_port

pytestmark = pytest.mark.integration


def processes_naming(text: str) -> list[int]:
    """Live processes whose command line or environment names ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().split(") ", 1)[1][0]
        except OSError:
            continue
        if text.encode() in command and state != "Z":
            found.append(int(entry.name))
    return found


def test_docflow_stop_leaves_no_process_and_frees_the_ports(tmp_path: Path) -> None:
    home = tmp_path / "home"
    environment = {**os.environ, "DOCFLOW_HOME": str(home), "OMP_THREAD_LIMIT": "1"}
    environment.pop("DAGSTER_HOME", None)
    prepare_dagster_home(environment, home)
    run_dir = home / "run"
    ports = free_port(), free_port()
    # No model is served in this home, so /health answers 503: the front page says it is up.
    api = replace(services.api_service(ports[1]), ready_url=f"http://127.0.0.1:{ports[1]}/")
    try:
        services.start(
            services.dagster_service(ports[0], REPO_ROOT / "workspace.yaml"), run_dir, environment
        )
        services.start(api, run_dir, environment)
        # dagster dev, its webserver, daemon and code servers, and the API
        assert len(processes_naming(str(home))) >= 4
        stopped = subprocess.run(
            [str(BIN / "docflow"), "stop"],
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )
        left = processes_naming(str(home))
    finally:
        for pid in processes_naming(str(home)):  # what a failed test would leave behind
            os.kill(pid, 9)
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped: api, dagster" in stopped.stdout
    assert left == []
    assert not any(services.port_open(port) for port in ports)
    assert not list(run_dir.glob("*.pid"))
