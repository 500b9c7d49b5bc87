"""The pipeline on the dashboard: /metrics carries the pipeline's state, read from the database
at scrape time, and every query of the Grafana dashboard answers on a real Prometheus (Debian's)
that scrapes a real API server."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from docflow_api.app import create_app
from docflow_api.metrics import PipelineCollector
from docflow_assets.document_service import DocumentService
from docflow_assets.ingest import ingest
from docflow_assets.settings import DocflowSettings
from docflow_assets.store.database import session_scope
from docflow_assets.store.models import Document
from docflow_assets.store.repository import GATE_SPLIT, mark_failed, record_model_metrics
from tests.helpers import page_png, serve
from tests.servers import ServerProcess, free_port, wait_for

REPO = Path(__file__).resolve().parents[1]
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "docflow.json"
PIPELINE_PANELS = {
    "Documents by status",
    "Backlog: age of the oldest unread upload",
    "Pages read per minute by engine",
    "Failed documents by reason",
    "Deployment gate: last verdict",
}


@pytest.fixture
def pipeline_home(tmp_path: Path) -> DocflowSettings:
    """One document read, one waiting, one failed, and a gate that refused version 3."""
    settings = DocflowSettings(home=tmp_path / "home", ocr_mode="tesseract")
    service = DocumentService.from_settings(settings)

    def upload(text: str) -> int:
        stored = ingest(io.BytesIO(page_png(text)), f"{text}.png", settings, service.store)
        return stored.document.id

    service.text(upload("Invoice 42 total due"))
    upload("Letter waiting to be read")
    failed = upload("Memo that fails")
    with session_scope(settings.resolved_database_url) as session:
        document = session.get(Document, failed)
        assert document is not None
        mark_failed(session, document, "OCR failed: ValueError: page cannot be read")
        record_model_metrics(session, "docflow-classifier", "3", GATE_SPLIT, {"passed": 0.0})
    return settings


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_carry_the_pipeline_state(pipeline_home: DocflowSettings) -> None:
    with TestClient(create_app(pipeline_home)) as client:
        scraped = samples(client.get("/metrics").text)
    assert scraped[("docflow_pipeline_state_up", ())] == 1
    assert scraped[("docflow_documents", (("status", "uploaded"),))] == 1
    assert scraped[("docflow_documents", (("status", "failed"),))] == 1
    assert sum(v for (name, _), v in scraped.items() if name == "docflow_documents") == 3
    assert scraped[("docflow_backlog_oldest_upload_seconds", ())] > 0
    assert scraped[("docflow_pages_read_total", (("engine", "tesseract"),))] == 1
    assert scraped[("docflow_documents_failed", (("reason", "ocr_error"),))] == 1
    assert scraped[("docflow_model_gate_passed", (("version", "3"),))] == 0


def test_metrics_say_when_the_database_cannot_be_read(tmp_path: Path) -> None:
    unreachable = DocflowSettings(
        home=tmp_path / "home", database_url="postgresql://nobody@127.0.0.1:1/docflow"
    )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PipelineCollector(DocumentService.from_settings(unreachable).pipeline_state))
    scraped = samples(generate_latest(registry).decode())
    assert scraped == {("docflow_pipeline_state_up", ()): 0}


@contextmanager
def prometheus_scraping(api: str, folder: Path) -> Iterator[str]:
    binary = shutil.which("prometheus")
    assert binary, "make install provides Debian's prometheus"
    port = free_port()
    config = folder / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: docflow-api\n"
        f"    static_configs:\n      - targets: ['{api.removeprefix('http://')}']\n"
    )
    server = ServerProcess(
        "prometheus",
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        {},
        folder,
        ready=lambda: _ready(f"http://127.0.0.1:{port}/-/ready"),
        ready_timeout=60,
    )
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def query(prometheus: str, expression: str) -> list[dict[str, object]]:
    body = httpx.get(f"{prometheus}/api/v1/query", params={"query": expression}).json()
    assert body["status"] == "success", (expression, body)
    return list(body["data"]["result"])


@pytest.mark.integration
def test_every_dashboard_query_answers_on_a_real_prometheus(
    pipeline_home: DocflowSettings, tmp_path: Path
) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "make install provides Debian's prometheus (promtool)"
    checked = subprocess.run(
        [promtool, "check", "config", str(REPO / "deploy" / "prometheus" / "prometheus.yml")],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

    panels = json.loads(DASHBOARD.read_text())["panels"]
    assert {panel["title"] for panel in panels} >= PIPELINE_PANELS
    with serve(pipeline_home) as api, prometheus_scraping(api, tmp_path) as prometheus:
        httpx.get(f"{api}/documents")
        # rate() needs two scrapes of a series inside its window.
        wait_for(
            lambda: bool(query(prometheus, "count_over_time(docflow_documents[1m]) >= 3")),
            60,
            "three scrapes of the API",
        )
        for panel in panels:
            for target in panel["targets"]:
                result = query(prometheus, target["expr"])
                if panel["title"] in PIPELINE_PANELS:
                    assert result, f"{panel['title']}: {target['expr']} has no data"
        [gate] = query(prometheus, "max by (version) (docflow_model_gate_passed)")
        assert gate["metric"] == {"version": "3"}
        assert gate["value"][1] == "0"  # type: ignore[index]
