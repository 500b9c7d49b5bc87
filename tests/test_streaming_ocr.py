"""An OCR batch streams: originals are fetched as the workers need them, every document is
recorded as soon as it is read, and a batch cut short keeps what it read."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from docflow_assets.demo.content import DOCUMENT_CLASSES
from docflow_assets.demo.render import render_corpus
from docflow_assets.document_service import DocumentService, OcrReport
from docflow_assets.ingest import ingest_folder
from docflow_assets.ocr.pipeline import (
    IN_FLIGHT_PER_WORKER,
    OcrOptions,
    OcrRequest,
    iter_ocr_documents,
)
from docflow_assets.settings import DocflowSettings
from docflow_assets.store.database import session_scope
from docflow_assets.store.models import Document, DocumentStatus, OcrResult
from docflow_assets.store.objects import ObjectStore, StoreUnavailable
from tests.conftest import REAL_SCANS
from tests.helpers import page_png


class CountingStore:
    """The home's object store, counting fetches, and failing from fetch ``fail_from`` on."""

    def __init__(self, store: ObjectStore, fail_from: int | None = None) -> None:
        self._store = store
        self.fetches = 0
        self.fail_from = fail_from

    def get_bytes(self, key: str) -> bytes:
        self.fetches += 1
        if self.fail_from is not None and self.fetches >= self.fail_from:
            raise StoreUnavailable(f"the object store went away at fetch {self.fetches}")
        return self._store.get_bytes(key)

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


@pytest.fixture
def uploaded(tmp_path: Path) -> tuple[DocflowSettings, list[int], date]:
    settings = DocflowSettings(home=tmp_path / "home", ocr_workers=2, ocr_mode="tesseract")
    folder = tmp_path / "docs"
    render_corpus(folder, 1, seed=5, classes=DOCUMENT_CLASSES)
    service = DocumentService.from_settings(settings)
    ingest_folder(folder, settings, service.store)
    with session_scope(settings.resolved_database_url) as session:
        documents = list(session.scalars(select(Document).order_by(Document.id)))
        return settings, [d.id for d in documents], documents[0].upload_date


def _service(settings: DocflowSettings, store: CountingStore) -> DocumentService:
    plain = DocumentService.from_settings(settings)
    return DocumentService(settings, store, plain.registry)  # type: ignore[arg-type]


def _read_ids(settings: DocflowSettings) -> set[int]:
    with session_scope(settings.resolved_database_url) as session:
        return set(
            session.scalars(select(Document.id).where(Document.status == DocumentStatus.OCR_DONE))
        )


def test_originals_are_fetched_as_workers_free_up_and_each_document_recorded_at_once(
    uploaded: tuple[DocflowSettings, list[int], date],
) -> None:
    settings, ids, day = uploaded
    store = CountingStore(DocumentService.from_settings(settings).store)
    seen: list[tuple[int, int, int]] = []

    def on_recorded(tally: OcrReport) -> None:
        seen.append((tally.documents, store.fetches, len(_read_ids(settings))))

    report = _service(settings, store).read(day, ids, on_recorded=on_recorded)

    assert report.documents == len(ids) and store.fetches == len(ids)
    documents_done, fetched_then, in_database = seen[0]
    # The first document was in the database before the batch's last original was fetched.
    assert documents_done == 1 and in_database == 1
    assert fetched_then <= IN_FLIGHT_PER_WORKER * settings.ocr_workers + 1 < len(ids)
    assert [done for done, _, stored in seen] == [stored for _, _, stored in seen]


def test_a_batch_cut_short_keeps_what_it_read_and_its_retry_reads_only_the_rest(
    uploaded: tuple[DocflowSettings, list[int], date],
) -> None:
    settings, ids, day = uploaded
    failing = CountingStore(DocumentService.from_settings(settings).store, fail_from=6)
    with pytest.raises(StoreUnavailable):
        _service(settings, failing).read(day, ids)
    kept = _read_ids(settings)
    assert 1 <= len(kept) <= 5  # what the first five originals gave, as far as it was read
    with session_scope(settings.resolved_database_url) as session:
        pages_kept = session.scalar(
            select(func.count()).select_from(OcrResult).where(OcrResult.document_id.in_(kept))
        )
    assert pages_kept == len(kept)

    retry = CountingStore(DocumentService.from_settings(settings).store)
    report = _service(settings, retry).read(day, ids, resume=True)
    assert report.already_read == len(kept)
    assert retry.fetches == len(ids) - len(kept) == report.documents
    assert _read_ids(settings) == set(ids)


def test_ocr_files_reads_in_order_and_names_the_files_it_cannot_read(tmp_path: Path) -> None:
    settings = DocflowSettings(home=tmp_path / "home", ocr_mode="tesseract")
    folder = tmp_path / "files"
    scans = [
        folder / item.filename
        for item in render_corpus(folder, 1, seed=9, classes=DOCUMENT_CLASSES[:3])
    ]
    not_a_scan = folder / "notes.txt"
    not_a_scan.write_text("plain text is no document")
    paths = [scans[0], not_a_scan, tmp_path / "missing.png", *scans[1:]]

    readings = list(DocumentService.from_settings(settings).ocr_files(paths, workers=2))

    assert [reading.path for reading in readings] == paths
    unreadable = {reading.path: reading.error for reading in readings if reading.document is None}
    assert set(unreadable) == {not_a_scan, tmp_path / "missing.png"}
    assert all(unreadable.values())
    read = [reading.document for reading in readings if reading.document is not None]
    assert len(read) == len(scans) and all(document.text.strip() for document in read)
    # Reading files registers and stores nothing.
    assert not (tmp_path / "home" / "docflow.db").exists()
    assert not [path for path in (tmp_path / "home").rglob("*") if path.is_file()]


def test_a_slow_document_does_not_hold_back_those_read_beside_it() -> None:
    """A six-page PDF first, then one-line pages: the other process reads them all while the
    PDF is read, and each comes back as soon as it is read, not queued behind the PDF."""
    slow = OcrRequest(0, (REAL_SCANS / "multipage.pdf").read_bytes(), "application/pdf")
    quick = [OcrRequest(n, page_png("quick"), "image/png") for n in range(1, 7)]

    order = [
        reading.document_id
        for reading in iter_ocr_documents([slow, *quick], OcrOptions(mode="tesseract"), workers=2)
    ]

    assert sorted(order) == list(range(7))
    assert order[-1] == 0
