"""The API as production runs it: uvicorn processes of their own over one home. Two servers
share a document's OCR; stalled and abandoned connections cost no error log; hostile documents
keep a server's memory bounded."""

from __future__ import annotations

import io
import os
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageDraw
from prometheus_client.parser import text_string_to_metric_families

from docflow_assets import services
from docflow_assets.settings import DocflowSettings
from tests.helpers import page, pdf_of_huge_pages
from tests.servers import ServerProcess, free_port

pytestmark = pytest.mark.integration


@contextmanager
def api_process(
    settings: DocflowSettings, name: str, **environment: str
) -> Iterator[tuple[str, ServerProcess]]:
    port = free_port()
    service = services.api_service(port)
    env = {**os.environ, "DOCFLOW_HOME": str(settings.resolved_home), **environment}
    server = ServerProcess(
        name,
        service.command,
        env,
        Path(settings.resolved_home),
        ready=lambda: _answers(service.ready_url),
        ready_timeout=120,
    )
    server.start()
    try:
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.stop()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def ocr_runs(base: str) -> float:
    """How many documents this server has OCRed, from its own Prometheus metrics."""
    text = httpx.get(f"{base}/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "docflow_ocr_seconds_count":
                return sample.value
    return 0.0


def memory_kib(server: ServerProcess, field: str) -> int:
    """VmRSS (now) or VmHWM (peak) of the server process, in KiB."""
    assert server.process is not None
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    [line] = [line for line in status.splitlines() if line.startswith(f"{field}:")]
    return int(line.split()[1])


def dense_page(lines: int) -> bytes:
    """A letter page at 300 dpi full of text: a second or more of OCR."""
    image = page("", size=(2550, 3300))
    draw = ImageDraw.Draw(image)
    for line in range(lines):
        draw.text((100, 100 + 60 * line), f"line {line}: Invoice INV-{line:04d} total 132.00 " * 3)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_two_servers_on_one_database_read_a_document_once(home_copy: DocflowSettings) -> None:
    with ExitStack() as stack:
        first, _ = stack.enter_context(api_process(home_copy, "api-first"))
        second, _ = stack.enter_context(api_process(home_copy, "api-second"))
        stored = httpx.post(
            f"{first}/upload", files={"file": ("shared.png", dense_page(40))}, timeout=60
        )
        assert stored.status_code == 201, stored.text
        document_id = stored.json()["id"]
        start = threading.Barrier(8)

        def predict(base: str) -> httpx.Response:
            start.wait()
            return httpx.post(f"{base}/predict/document/{document_id}", timeout=120)

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(predict, [first, second] * 4))
        assert [a.status_code for a in answers] == [200] * 8, [a.text for a in answers]
        assert len({a.json()["predicted_class"] for a in answers}) == 1
        # Eight requests on two processes, one OCR between them: the others read its text.
        assert ocr_runs(first) + ocr_runs(second) == 1
        document = httpx.get(f"{first}/document/{document_id}").json()
        assert document["status"] == "predicted"


def hang(base: str, request: bytes) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)))
    connection.sendall(request)
    return connection


def test_stalled_and_abandoned_connections_are_not_errors(home_copy: DocflowSettings) -> None:
    half_headers = b"POST /predict/text HTTP/1.1\r\nHost: x\r\nContent-Le"
    half_body = (
        b"POST /predict/text HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 1000\r\n\r\n{"text": "half a bo'
    )
    with api_process(home_copy, "api-stalled") as (base, server):
        stalled = [hang(base, half_headers if n % 2 else half_body) for n in range(300)]
        try:
            # 300 stalled clients hold connections; the server still answers everyone else.
            started = time.monotonic()
            answer = httpx.post(f"{base}/predict/text", json={"text": "Invoice 42"}, timeout=10)
            assert answer.status_code == 200
            assert time.monotonic() - started < 2
        finally:
            for connection in stalled:
                connection.close()
        time.sleep(2)  # the server notices the hang-ups
        assert httpx.get(f"{base}/health").status_code == 200
        log = server.log_path.read_text(errors="replace")
    assert "Traceback" not in log and "ERROR" not in log, log[-3000:]


def png_bomb() -> bytes:
    """A 20000 x 20000 blank page: 48 kB of PNG, 400 megapixels decoded."""
    buffer = io.BytesIO()
    Image.new("1", (20_000, 20_000), 1).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def test_hostile_documents_keep_the_server_memory_bounded(home_copy: DocflowSettings) -> None:
    with (
        api_process(home_copy, "api-memory") as (base, server),
        httpx.Client(base_url=base, timeout=120) as client,
    ):
        # Warm: the engines are loaded by a first real OCR, so the baseline holds them.
        warm = client.post("/upload-and-predict", files={"file": ("warm.png", dense_page(10))})
        assert warm.status_code == 200, warm.text
        baseline = memory_kib(server, "VmRSS")
        refused = {
            "bomb.png": (png_bomb(), 422, "larger than the limit of 60000000 pixels"),
            "huge.pdf": (pdf_of_huge_pages(), 413, "megapixels"),
        }
        for name, (data, status, says) in refused.items():
            answer = client.post("/upload-and-predict", files={"file": (name, data)})
            assert answer.status_code == status and says in answer.text, (name, answer.text)
        for lines in (20, 50):  # legal letter pages, read online
            read = client.post(
                "/upload-and-predict", files={"file": (f"dense-{lines}.png", dense_page(lines))}
            )
            assert read.status_code == 200, read.text
        peak = memory_kib(server, "VmHWM")
    # A letter page at 300 dpi is 8.4 MP: its decode, preprocessing copies and both engines'
    # buffers stay well under the 400 MP a bomb would decode to (about 400 MB for 1-bit).
    grown_mib = (peak - baseline) / 1024
    assert grown_mib < 400, f"peak RSS grew by {grown_mib:.0f} MiB over {baseline // 1024} MiB"
