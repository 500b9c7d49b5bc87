"""The production compose file, checked by Debian's docker-compose (no Docker engine runs here;
the services themselves run for real in test_production_stack.py)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
SECRETS = (
    "POSTGRES_PASSWORD",
    "MINIO_ROOT_PASSWORD",
    "GRAFANA_ADMIN_PASSWORD",
    "RABBITMQ_PASSWORD",
)


def compose_config(env_file: Path) -> subprocess.CompletedProcess[str]:
    compose = shutil.which("docker-compose")
    assert compose, "make install provides Debian's docker-compose"
    return subprocess.run(
        [compose, "--env-file", str(env_file), "config"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def filled_env(tmp_path: Path) -> Path:
    lines = []
    for line in (REPO / ".env.example").read_text().splitlines():
        name = line.partition("=")[0]
        lines.append(f"{name}=secret-{name.lower()}" if name in SECRETS else line)
    env = tmp_path / ".env"
    env.write_text("\n".join(lines) + "\n")
    return env


def test_the_stack_starts_in_order_and_publishes_only_the_api_and_the_uis(filled_env: Path) -> None:
    result = compose_config(filled_env)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert {
        "postgres",
        "minio",
        "minio-bucket",
        "mlflow",
        "code",
        "webserver",
        "daemon",
        "api",
        "prometheus",
        "grafana",
        "rabbitmq",
        "worker",
    } <= set(services)
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"api", "webserver", "prometheus", "grafana"}
    for name in ("api", "code"):
        migrated = services[name]["depends_on"]["migrate"]["condition"]
        assert migrated == "service_completed_successfully", name
    assert services["migrate"]["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert services["mlflow"]["depends_on"]["minio-bucket"]["condition"] == (
        "service_completed_successfully"
    )
    for name in ("postgres", "minio", "mlflow", "code", "webserver", "api"):
        assert "healthcheck" in services[name], name
    assert "secret-postgres_password" in services["api"]["environment"]["DOCFLOW_DATABASE_URL"]
    # Steps run on the scalable Celery workers, through the broker the stack starts.
    worker = services["worker"]
    assert worker["command"] == ["docflow", "worker"] and "ports" not in worker
    assert worker["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
    for name in ("worker", "code", "daemon"):
        environment = services[name]["environment"]
        assert environment["DOCFLOW_EXECUTOR"] == "celery", name
        assert "secret-rabbitmq_password@rabbitmq" in environment["DOCFLOW_CELERY_BROKER"], name


def test_the_stack_refuses_to_start_without_its_secrets(tmp_path: Path) -> None:
    result = compose_config(REPO / ".env.example")
    assert result.returncode != 0
    assert "in .env" in result.stderr
