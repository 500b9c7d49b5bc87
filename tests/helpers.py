"""Test documents made on the fly, and the API served for real on loopback."""

from __future__ import annotations

import io
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from unittest.mock import patch

import pytest
import uvicorn
from PIL import Image, ImageDraw
from sqlalchemy import select

from docflow_api.app import create_app
from docflow_assets.settings import DocflowSettings

if TYPE_CHECKING:
    from tests.conftest import TrainedHome


def page(text: str = "Invoice 42", size: tuple[int, int] = (400, 200)) -> Image.Image:
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).text((20, 80), text, fill="black")
    return image


def page_png(text: str) -> bytes:
    """A one-line page as PNG bytes; different text, different document."""
    buffer = io.BytesIO()
    page(text).save(buffer, format="PNG")
    return buffer.getvalue()


def encoded(image_format: str, pages: int = 1, **options: object) -> bytes:
    buffer = io.BytesIO()
    frames = [page(f"page {n}") for n in range(pages)]
    if pages > 1:
        frames[0].save(
            buffer, format=image_format, save_all=True, append_images=frames[1:], **options
        )
    else:
        frames[0].save(buffer, format=image_format, **options)
    return buffer.getvalue()


def pdf_promising_three_pages() -> bytes:
    """One real page under a page tree whose /Count says 3."""
    one_page = encoded("PDF")
    assert one_page.count(b"/Count 1") == 1
    return one_page.replace(b"/Count 1", b"/Count 3")


def pdf_of_huge_pages() -> bytes:
    """A few kilobytes: 60 blank pages of 200 x 200 inches (each rendered at the 50-megapixel
    cap, 3 gigapixels in all)."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument.new()
    for _ in range(60):
        pdf.new_page(14_400, 14_400).close()
    buffer = io.BytesIO()
    pdf.save(buffer)
    return buffer.getvalue()


@contextmanager
def serve(settings: DocflowSettings) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            # Leave logging as it is: tests catch records on the loggers (server_log_records).
            log_config=None,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def server_log_records() -> Iterator[list[logging.LogRecord]]:
    """Records of the API, uvicorn and Litestar loggers, caught on the loggers themselves:
    Litestar reconfigures the root logger when an app is made, which drops pytest's caplog."""
    records: list[logging.LogRecord] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    catch = Catch(logging.INFO)
    loggers = [logging.getLogger(name) for name in ("docflow.api", "uvicorn.error", "litestar")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(catch)
        logger.setLevel(logging.INFO)
    try:
        yield records
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(catch)
            logger.setLevel(level)


def check_deletion(settings: DocflowSettings) -> None:
    """Deletes one of two read, featurised and predicted documents through the service and
    checks that all of it went, and nothing of the other."""
    import numpy as np
    import scipy.sparse as sp

    from docflow_assets.document_service import DocumentNotFound, DocumentService
    from docflow_assets.ingest import ingest
    from docflow_assets.ml.feature_store import (
        StoredFeatures,
        features_key,
        load_features,
        save_features,
    )
    from docflow_assets.page_text import PageText
    from docflow_assets.store.database import session_scope
    from docflow_assets.store.models import Document, OcrResult, Prediction
    from docflow_assets.store.repository import add_prediction, replace_ocr_results

    service = DocumentService.from_settings(settings)
    store = service.store
    kept, doomed = (
        ingest(io.BytesIO(page_png(f"deletion check {n}")), f"d{n}.png", settings, store).document
        for n in range(2)
    )
    ids = [kept.id, doomed.id]
    with session_scope(settings.resolved_database_url) as session:
        for document_id in ids:
            document = session.get(Document, document_id)
            assert document is not None
            replace_ocr_results(session, document, [PageText("cascade", "eng", [], 0.1, text="x")])
            add_prediction(session, document_id, "m", "1", "memo", 0.9, {"memo": 0.9}, "batch")
    key = features_key(kept.upload_date, ids)
    save_features(store, key, StoredFeatures(ids, sp.csr_matrix(np.eye(2)), "1"))

    report = service.delete(doomed.id)
    assert (report.ocr_rows, report.predictions, report.feature_rows) == (1, 1, 1)
    assert not store.exists(doomed.storage_key) and store.exists(kept.storage_key)
    with session_scope(settings.resolved_database_url) as session:
        assert session.get(Document, doomed.id) is None
        for table in (OcrResult, Prediction):
            owners = session.scalars(select(table.document_id).where(table.document_id.in_(ids)))
            assert set(owners) == {kept.id}
    remaining = load_features(store, key)
    assert remaining.document_ids == [kept.id] and remaining.matrix.shape == (1, 2)
    with pytest.raises(DocumentNotFound):
        service.delete(doomed.id)


def check_search(settings: DocflowSettings) -> None:
    """Full-text search over OCR text: every word must match, the better match first, with a
    snippet; operators in the query are words, not syntax; a re-read or deleted document's
    old text is not found."""
    from docflow_assets.document_service import DocumentService
    from docflow_assets.ingest import ingest
    from docflow_assets.page_text import PageText
    from docflow_assets.store.database import session_scope
    from docflow_assets.store.models import Document
    from docflow_assets.store.repository import replace_ocr_results
    from docflow_assets.store.repository import text as text_index

    service = DocumentService.from_settings(settings)
    texts = {
        "water": "Northwind water utility bill. Water usage 42 m3. Water charges due",
        "invoice": "Invoice from Northwind Traders for paper and ink",
        "letter": "Dear Anna, thank you for the water colours. Yours, Ben",
    }
    ids = {}
    for name, content in texts.items():
        data = page_png(f"search check {name}")
        document = ingest(io.BytesIO(data), f"{name}.png", settings, service.store).document
        with session_scope(settings.resolved_database_url) as session:
            row = session.get(Document, document.id)
            assert row is not None
            replace_ocr_results(session, row, [PageText("cascade", "eng", [], 0.1, text=content)])
        ids[name] = document.id

    total, found = service.search("water", 1, 10)
    ranked = [document.id for document, _, _ in found]
    assert total == 2 and ranked == [ids["water"], ids["letter"]]  # three mentions beat one
    assert "[water]" in found[0][2].lower()
    assert [d.id for d, _, _ in service.search("northwind water", 1, 10)[1]] == [ids["water"]]
    assert service.search('ink OR "water', 1, 10)[0] == 0  # OR and the quote are plain words
    with session_scope(settings.resolved_database_url) as session:
        row = session.get(Document, ids["letter"])
        assert row is not None
        replace_ocr_results(session, row, [PageText("cascade", "eng", [], 0.1, text="Dear Ben")])
    assert [d.id for d, _, _ in service.search("water", 1, 10)[1]] == [ids["water"]]
    service.delete(ids["water"])
    assert service.search("water", 1, 10)[0] == 0

    # A word on more pages than one search ranks: the newest pages are ranked, best first.
    harbour = []
    for mentions in (3, 1, 2):
        data = page_png(f"search check harbour {mentions}")
        stored = ingest(io.BytesIO(data), f"harbour-{mentions}.png", settings, service.store)
        with session_scope(settings.resolved_database_url) as session:
            row = session.get(Document, stored.document.id)
            assert row is not None
            text = " ".join(["harbour dues"] * mentions + ["paid in full"] * (3 - mentions))
            replace_ocr_results(session, row, [PageText("cascade", "eng", [], 0.1, text=text)])
        harbour.append(stored.document.id)
    oldest_best, newer, newest = harbour
    assert [d.id for d, _, _ in service.search("harbour", 1, 10)[1]] == [oldest_best, newest, newer]
    with patch.object(text_index, "MAX_SEARCH_MATCHES", 2):
        total, found = service.search("harbour", 1, 10)
        assert total == 2 and [d.id for d, _, _ in found] == [newest, newer]
        with session_scope(settings.resolved_database_url) as session:
            session.get(Document, newest).status = "failed"  # type: ignore[union-attr]
        kept = service.document(newer).status
        total, found = service.search("harbour", 1, 10, status=kept)
        assert total == 1 and [d.id for d, _, _ in found] == [newer]


def check_retention(
    settings: DocflowSettings, expire: Callable[[DocflowSettings], int] | None = None
) -> list[int]:
    """Originals of processed documents past the retention period go, nothing else, once;
    ``expire`` applies the period (the service's call by default; a Dagster run, say) and
    says how many went. Returns the ids of a kept and an expired original."""
    from datetime import UTC, datetime, timedelta

    from docflow_assets.document_service import DocumentService, OriginalExpired
    from docflow_assets.ingest import ingest
    from docflow_assets.page_text import PageText
    from docflow_assets.store.database import session_scope
    from docflow_assets.store.models import Document, DocumentStatus
    from docflow_assets.store.repository import replace_ocr_results

    kept_for = settings.model_copy(update={"retention_days": 30})
    service = DocumentService.from_settings(kept_for)
    now = datetime.now(UTC)
    ids = {}
    for name, age_days, processed in (("old", 40, True), ("waiting", 40, False), ("new", 5, True)):
        data = page_png(f"retention check {name}")
        document = ingest(io.BytesIO(data), f"{name}.png", kept_for, service.store).document
        with session_scope(kept_for.resolved_database_url) as session:
            row = session.get(Document, document.id)
            assert row is not None
            row.uploaded_at = now - timedelta(days=age_days)
            if processed:
                replace_ocr_results(session, row, [PageText("cascade", "eng", [], 0.1, text=name)])
                row.status = DocumentStatus.PREDICTED
        ids[name] = document.id

    assert DocumentService.from_settings(settings).expire_originals(now) == []  # unset: kept
    if expire is None:
        assert service.expire_originals(now) == [ids["old"]]
    else:
        assert expire(kept_for) == 1
    assert service.expire_originals(now) == []  # once
    stored = {
        name: service.store.exists(service.document(i).storage_key) for name, i in ids.items()
    }
    assert stored == {"old": False, "waiting": True, "new": True}
    with pytest.raises(OriginalExpired, match="retention period"):
        service.original(ids["old"])
    assert service.text(ids["old"]) == ("old", False)  # the text stays
    return [ids["new"], ids["old"]]


def set_aside_other_tests_documents(settings: DocflowSettings, trained: TrainedHome) -> None:
    """Other tests upload (and label, and process) documents in the shared trained home; the
    automation rightly counts or waits for those, so tests of its rules mark them failed."""
    from docflow_assets.store.database import session_scope
    from docflow_assets.store.models import Document, DocumentStatus

    own = {*trained.training_ids, *trained.holdout}
    with session_scope(settings.resolved_database_url) as session:
        for document in session.scalars(select(Document).where(Document.id.not_in(own))):
            document.status = DocumentStatus.FAILED
