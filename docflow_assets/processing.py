"""Online processing of one stored document: OCR when needed, then a recorded prediction."""

from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass

from docflow_assets.ml.classifier import DocumentClassifier, ScoredText
from docflow_assets.ocr.engines import check_languages
from docflow_assets.ocr.pipeline import OcrOptions, OcrStopped, ocr_document
from docflow_assets.settings import DocflowSettings
from docflow_assets.store.database import session_scope
from docflow_assets.store.models import Document, DocumentStatus, Prediction
from docflow_assets.store.objects import ObjectStore
from docflow_assets.store.repository import (
    add_prediction,
    document_texts,
    mark_failed,
    replace_ocr_results,
)


class DocumentNotFound(LookupError):
    pass


class LeftToPipeline(Exception):
    """OCR of this document is too large a job to finish inside a request."""

    def __init__(self, document_id: int, why: str) -> None:
        super().__init__(
            f"document {document_id} is stored and the pipeline will read it: {why} "
            f"(poll GET /document/{document_id})"
        )
        self.document_id = document_id


class OcrBusy(Exception):
    """Every online OCR slot is taken: try again shortly."""


@dataclass(frozen=True)
class DocumentPrediction:
    document_id: int
    scored: ScoredText
    prediction_id: int
    ran_ocr: bool


def document_text(
    settings: DocflowSettings,
    store: ObjectStore,
    document_id: int,
    language: str | None = None,
    ocr_slots: threading.Semaphore | None = None,
    client_gone: threading.Event | None = None,
) -> tuple[str, bool]:
    """The stored OCR text, or OCR now (and store it). Returns the text and whether OCR ran.

    OCR now is bounded: a document of more than ``settings.online_max_pages`` pages is left to
    the pipeline (``LeftToPipeline``), and with every one of ``ocr_slots`` taken the call
    refuses at once (``OcrBusy``) rather than queue behind minutes of work. The reading stops
    between pages once ``settings.online_ocr_seconds`` are spent or ``client_gone`` is set;
    the document stays uploaded for the pipeline (``LeftToPipeline``)."""
    if language is not None:
        check_languages(language)
    # Identical requests racing for one document wait for the first one's OCR and read its
    # stored text, rather than each read the document again.
    with _document_lock(document_id):
        return _document_text(settings, store, document_id, language, ocr_slots, client_gone)


_locks_guard = threading.Lock()
_document_locks: weakref.WeakValueDictionary[int, threading.Lock] = weakref.WeakValueDictionary()


def _document_lock(document_id: int) -> threading.Lock:
    with _locks_guard:
        lock = _document_locks.get(document_id)
        if lock is None:
            lock = _document_locks[document_id] = threading.Lock()
        return lock


def _document_text(
    settings: DocflowSettings,
    store: ObjectStore,
    document_id: int,
    language: str | None,
    ocr_slots: threading.Semaphore | None,
    client_gone: threading.Event | None,
) -> tuple[str, bool]:
    with session_scope(settings.resolved_database_url) as session:
        document = session.get(Document, document_id)
        if document is None:
            raise DocumentNotFound(f"document {document_id} does not exist")
        stored = document_texts(session, [document_id], prefer=settings.ocr_mode).get(document_id)
        if stored is not None and language is None:
            return stored, False
        key, content_type = document.storage_key, document.content_type
        if document.pages > settings.online_max_pages:
            raise LeftToPipeline(
                document_id,
                f"it has {document.pages} pages; online OCR reads at most "
                f"{settings.online_max_pages}",
            )
    if ocr_slots is not None and not ocr_slots.acquire(blocking=False):
        raise OcrBusy(
            f"every online OCR slot is busy: document {document_id} is stored and the pipeline "
            f"will read it; POST /predict/document/{document_id} again in a few seconds for a "
            "prediction now"
        )
    deadline = time.monotonic() + settings.online_ocr_seconds

    def stop() -> str | None:
        if client_gone is not None and client_gone.is_set():
            return "the client went away"
        if time.monotonic() > deadline:
            return f"online OCR took its {settings.online_ocr_seconds:.0f} s"
        return None

    try:
        pages = ocr_document(
            store.get_bytes(key),
            content_type,
            OcrOptions.from_settings(settings, language),
            stop=stop,
        )
    except OcrStopped as stopped:
        raise LeftToPipeline(document_id, str(stopped)) from stopped
    except Exception as error:
        with session_scope(settings.resolved_database_url) as session:
            document = session.get(Document, document_id)
            if document is not None:
                mark_failed(session, document, f"OCR failed: {type(error).__name__}: {error}")
        raise
    finally:
        if ocr_slots is not None:
            ocr_slots.release()
    with session_scope(settings.resolved_database_url) as session:
        document = session.get(Document, document_id)
        if document is not None:
            replace_ocr_results(session, document, pages)
    return "\n\n".join(page.text for page in pages), True


def predict_document(
    settings: DocflowSettings,
    store: ObjectStore,
    classifier: DocumentClassifier,
    model_name: str,
    model_version: str,
    document_id: int,
    language: str | None = None,
    ocr_slots: threading.Semaphore | None = None,
    client_gone: threading.Event | None = None,
) -> DocumentPrediction:
    text, ran_ocr = document_text(settings, store, document_id, language, ocr_slots, client_gone)
    scored = classifier.score_text(text)
    with session_scope(settings.resolved_database_url) as session:
        prediction: Prediction = add_prediction(
            session,
            document_id,
            model_name,
            model_version,
            scored.predicted_class,
            scored.confidence,
            scored.scores,
            source="api",
        )
        document = session.get(Document, document_id)
        if document is not None:
            document.status = DocumentStatus.PREDICTED
        session.flush()
        prediction_id = prediction.id
    return DocumentPrediction(document_id, scored, prediction_id, ran_ocr)
