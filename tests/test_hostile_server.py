# ruff: noqa: E501 (the corpus is a table: one probe a line)
"""A hostile-input corpus against the API served for real on loopback (uvicorn, API keys on).

Every probe names the answer it must get and whether it may store a document; the server must
answer each with a clear 4xx (never a 5xx), log client faults without a traceback, keep nothing
of a rejected upload, and stay up.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image, ImageDraw
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from docflow_assets.settings import DocflowSettings
from docflow_assets.store.database import session_scope
from docflow_assets.store.models import Document
from tests.helpers import (
    page,
    page_png,
    pdf_of_huge_pages,
    pdf_promising_three_pages,
    serve,
    server_log_records,
)

pytestmark = pytest.mark.integration

KEY = "hostile-corpus-key"
BOUNDARY = "hostileBoundary7MA4YWxk"


def multipart(*parts: tuple[bytes, bytes]) -> bytes:
    """A multipart body from raw (part headers, content) pairs, bytes exactly as given."""
    body = b""
    for headers, content in parts:
        body += f"--{BOUNDARY}\r\n".encode() + headers + b"\r\n\r\n" + content + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


def file_part(filename: bytes, data: bytes, content_type: bytes = b"image/png") -> tuple:
    disposition = b'Content-Disposition: form-data; name="file"; filename="' + filename + b'"'
    return disposition + b"\r\nContent-Type: " + content_type, data


def field(name: bytes, value: bytes) -> tuple[bytes, bytes]:
    return b'Content-Disposition: form-data; name="' + name + b'"', value


def raw_upload(path: str, *parts: tuple[bytes, bytes]) -> Callable[[httpx.Client], httpx.Response]:
    content_type = f"multipart/form-data; boundary={BOUNDARY}"
    return lambda client: client.post(
        path, content=multipart(*parts), headers={"Content-Type": content_type}
    )


def upload(data: bytes, filename: str = "page.png", **fields: str):
    return lambda client: client.post(
        "/upload", files={"file": (filename, data, "application/octet-stream")}, data=fields
    )


def tiff_of_pages(pages: int, size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    blank = Image.new("1", size, 1)
    blank.save(
        buffer,
        format="TIFF",
        save_all=True,
        append_images=[blank] * (pages - 1),
        compression="group4",
    )
    return buffer.getvalue()


def three_page_tiff() -> bytes:
    """Pages no other test uploads (the home is shared), so this one is stored anew."""
    buffer = io.BytesIO()
    first, *rest = [page(f"hostile corpus, page {n} of three") for n in range(3)]
    first.save(buffer, format="TIFF", save_all=True, append_images=rest)
    return buffer.getvalue()


@dataclass(frozen=True)
class Probe:
    name: str
    send: Callable[[httpx.Client], httpx.Response]
    status: int
    says: str = ""  # a phrase the answer's detail must hold
    stores: bool = False


def json_post(path: str, body: bytes) -> Callable[[httpx.Client], httpx.Response]:
    return lambda client: client.post(
        path, content=body, headers={"Content-Type": "application/json"}
    )


PNG = page_png("hostile corpus page")
PROBES = [
    # 1. filenames
    Probe("quote injection", upload(page_png("hostile corpus: quote"), 'r.png"; filename*=UTF-8\'\'evil.html'), 201, stores=True),
    Probe("cyrillic filename", upload(page_png("hostile corpus: cyrillic"), "счёт.png"), 201, stores=True),
    Probe("NUL and LF", raw_upload("/upload", file_part(b"a\x00b\nc.png", page_png("hostile corpus: NUL"))), 201, stores=True),
    Probe("5000-character filename", raw_upload("/upload", file_part(b"a" * 5000 + b".png", PNG)), 400, "longer than 4 KiB"),
    # 3. multipart parts that are not UTF-8
    Probe("file part without filename", raw_upload("/upload", (b'Content-Disposition: form-data; name="file"\r\nContent-Type: image/png', PNG)), 400, "file part"),
    Probe("label of byte 0xff", raw_upload("/upload", file_part(b"x.png", PNG), field(b"label", b"\xff\xfe")), 400, "UTF-8"),
    Probe("RFC 5987 filename* only", raw_upload("/upload", (b"Content-Disposition: form-data; name=\"file\"; filename*=UTF-8''%D1%81.png\r\nContent-Type: image/png", PNG)), 400, "filename"),
    Probe("byte 0xff in the filename", raw_upload("/upload", file_part(b"a\xff.png", PNG)), 400, "multipart/form-data"),
    Probe("no closing boundary", lambda c: c.post("/upload", content=b"--" + BOUNDARY.encode() + b"\r\nbroken", headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}), 400),
    # 4. JSON that does not decode
    Probe("JSON with byte 0xff", json_post("/predict/text", b'{"text":"\xff"}'), 400, "UTF-8"),
    Probe("JSON nested 100k deep", json_post("/predict/text", b"[" * 100_000 + b"]" * 100_000), 400),
    Probe("JSON of the wrong shape", json_post("/predict/text", b'{"text": 5}'), 400),
    # 5. documents that lie or are not documents
    Probe("PDF whose /Count lies", upload(pdf_promising_three_pages(), "lie.pdf"), 422, "cannot be read"),
    Probe("lying PDF through upload-and-predict", lambda c: c.post("/upload-and-predict", files={"file": ("lie.pdf", pdf_promising_three_pages())}), 422),
    Probe("text posing as PNG", upload(b"\x89PNG\r\n\x1a\n not really", "fake.png"), 415, "neither a PDF nor an image"),
    Probe("empty file", upload(b"", "empty.png"), 422, "empty"),
    # 6. an empty ocr_language is the default
    Probe("empty ocr_language", lambda c: c.post("/upload-and-predict", files={"file": ("d.png", page_png("empty language field"))}, data={"ocr_language": ""}), 200, stores=True),
    Probe("unknown ocr_language", lambda c: c.post("/upload-and-predict", files={"file": ("e.png", page_png("klingon"))}, data={"ocr_language": "tlh"}), 422),
    # 7. work inside the byte limits
    Probe("PDF of 200-inch pages", upload(pdf_of_huge_pages(), "huge.pdf"), 413, "megapixels"),
    Probe("200-page TIFF over the pixel budget", upload(tiff_of_pages(200, (1000, 1000)), "many.tif"), 413, "megapixels"),
    Probe("pages beyond online OCR", lambda c: c.post("/upload-and-predict", files={"file": ("three.tif", three_page_tiff())}), 202, "pipeline", stores=True),
    # 8. batches
    Probe("batch over the character budget", lambda c: c.post("/predict/batch", json={"texts": ["x" * 60_000, "y" * 60_000]}), 413, "characters"),
    # 9. parameters and auth
    Probe("unknown status filter", lambda c: c.get("/documents", params={"status": "bogus"}), 400, "ocr_done"),
    Probe("id out of range", lambda c: c.get("/document/99999999999"), 400),
    Probe("non-ASCII API key", lambda c: c.get("/documents", headers={b"X-API-Key": b"\xff"}), 401),
    Probe("no API key", lambda c: c.get("/documents", headers={"X-API-Key": ""}), 401),
]  # fmt: skip


def document_count(settings: DocflowSettings) -> int:
    with session_scope(settings.resolved_database_url) as session:
        return int(session.scalar(select(func.count()).select_from(Document)) or 0)


def drop_mid_body(base: str) -> None:
    """A client that promises 100 kB of upload, sends 100 bytes and hangs up."""
    address = urlsplit(base)
    with socket.create_connection((address.hostname, address.port)) as connection:
        connection.sendall(
            f"POST /upload HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            "Content-Length: 100000\r\n\r\n".encode()
            + multipart(file_part(b"cut.png", PNG))[:100]
        )


def ocr_runs() -> float:
    return REGISTRY.get_sample_value("docflow_ocr_seconds_count") or 0.0


def test_hostile_requests_get_clear_4xx_and_leave_nothing_half_stored(
    home_copy: DocflowSettings,
) -> None:
    settings = home_copy.model_copy(
        update={
            "api_keys": KEY,
            "online_max_pages": 2,
            "max_document_pixels": 50_000_000,
            "api_max_batch_characters": 100_000,
        }
    )
    before = document_count(settings)
    answers: dict[str, httpx.Response] = {}
    with (
        server_log_records() as logged,
        serve(settings) as base,
        httpx.Client(base_url=base, headers={"X-API-Key": KEY}, timeout=120) as client,
    ):
        for probe in PROBES:
            answers[probe.name] = probe.send(client)
        drop_mid_body(base)
        for name in ("quote injection", "cyrillic filename", "NUL and LF"):
            stored_id = answers[name].json()["id"]
            header = client.get(f"/document/{stored_id}/file").headers["content-disposition"]
            assert header.count("filename=") == 1 and header.count("filename*=") == 1, header
            assert "evil.html;" not in header and header.isascii()

        # Ten identical uploads racing for online OCR: one OCR, ten predictions.
        ocr_before = ocr_runs()
        racing = page_png("ten clients send this page at once")
        with ThreadPoolExecutor(10) as pool:
            raced = list(
                pool.map(
                    lambda _: client.post(
                        "/upload-and-predict", files={"file": ("race.png", racing)}
                    ),
                    range(10),
                )
            )
        assert [r.status_code for r in raced] == [200] * 10, [r.text for r in raced]
        assert len({r.json()["document"]["id"] for r in raced}) == 1
        assert ocr_runs() - ocr_before == 1
        assert client.get("/health").status_code == 200  # still serving

    wrong = {}
    for probe in PROBES:
        answer = answers[probe.name]
        detail = answer.json().get("detail", "") if answer.content else ""
        if answer.status_code != probe.status or probe.says not in json.dumps(detail):
            wrong[probe.name] = f"{answer.status_code} {answer.text[:200]}"
    assert wrong == {}
    stored = sum(probe.stores for probe in PROBES) + 1  # and the raced document
    assert document_count(settings) == before + stored
    tracebacks = [r.getMessage() for r in logged if r.exc_info and r.levelno >= logging.ERROR]
    assert tracebacks == []
    assert any("before sending the whole body" in r.getMessage() for r in logged)


def many_page_tiff(pages: int) -> bytes:
    """Pages of 40 lines each: about a second of OCR a page."""
    frames = []
    for number in range(pages):
        frame = page("", size=(1700, 2200))
        draw = ImageDraw.Draw(frame)
        for line in range(40):
            words = f"a long document read online, page {number} line {line} " * 2
            draw.text((60, 60 + 50 * line), words, fill="black", font_size=24)
        frames.append(frame)
    buffer = io.BytesIO()
    frames[0].save(
        buffer, format="TIFF", save_all=True, append_images=frames[1:], compression="tiff_lzw"
    )
    return buffer.getvalue()


def test_online_ocr_stops_at_its_time_budget_and_when_the_client_hangs_up(
    home_copy: DocflowSettings,
) -> None:
    budgeted = home_copy.model_copy(update={"online_ocr_seconds": 0.5})
    with (
        serve(budgeted) as base,
        httpx.Client(base_url=base, timeout=120) as client,
    ):
        slow = client.post("/upload-and-predict", files={"file": ("long.tif", many_page_tiff(6))})
        assert slow.status_code == 202, slow.text
        assert "the time allowed" in slow.json()["detail"]
        document = client.get(f"/document/{slow.json()['document_id']}").json()
        assert document["status"] == "uploaded"  # the pipeline reads it, nothing half-stored

    with server_log_records() as logged, serve(home_copy) as base:
        address = urlsplit(base)
        body = multipart(file_part(b"gone.tif", many_page_tiff(8), b"image/tiff"))
        with socket.create_connection((address.hostname, address.port)) as connection:
            connection.sendall(
                f"POST /upload-and-predict HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}"
                f"\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n\r\n".encode()
                + body
            )
            connection.settimeout(2)
            with pytest.raises(TimeoutError):  # nothing comes back while OCR runs ...
                connection.recv(1)
        # ... and the client hangs up mid-OCR.
        stopped = "OCR stopped after"
        deadline = time.monotonic() + 20
        while not any(stopped in r.getMessage() for r in logged):
            assert time.monotonic() < deadline, "OCR went on after the client left"
            time.sleep(0.2)
    [record] = [r.getMessage() for r in logged if stopped in r.getMessage()]
    assert "the client went away" in record
    pages_read = int(record.split(stopped)[1].split()[0])
    assert pages_read < 8
