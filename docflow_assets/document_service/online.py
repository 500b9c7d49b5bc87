"""One document read and predicted inside a request: bounded by a budget, a lease and a
per-document lock, so identical requests wait for one reading."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from docflow_assets.document_service.errors import (
    LeftToPipeline,
    OcrBusy,
    OriginalExpired,
    OriginalMissing,
)
from docflow_assets.document_service.reports import DocumentPrediction
from docflow_assets.document_service.stores import ServiceStores, existing_document, ocr_options
from docflow_assets.ocr.engines import check_languages
from docflow_assets.ocr.pipeline import OcrStopped, ocr_document
from docflow_assets.store.database import session_scope
from docflow_assets.store.models import Document, DocumentStatus, Prediction
from docflow_assets.store.objects import ObjectNotFound
from docflow_assets.store.repository import (
    add_prediction,
    claim_online_ocr,
    document_texts,
    mark_failed,
    release_online_ocr,
    replace_ocr_results,
)

if TYPE_CHECKING:
    from docflow_assets.ml.classifier import DocumentClassifier

# An online OCR lease outlives the OCR budget by this much (the last page may overrun it), so a
# server that dies mid-read holds the document for a minute or so at most.
CLAIM_MARGIN_SECONDS = 60.0
CLAIM_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class OnlineReading:
    """How one request may have a document read now."""

    language: str | None = None  # None: the configured languages, and stored text is kept
    slots: threading.Semaphore | None = None  # online OCR at once; none free: OcrBusy
    client_gone: threading.Event | None = None  # set when nobody waits for the answer
    original: bytes | None = None  # the document's bytes, when the caller holds them already


NO_LIMITS = OnlineReading()

_locks_guard = threading.Lock()
_document_locks: weakref.WeakValueDictionary[int, threading.Lock] = weakref.WeakValueDictionary()


def _document_lock(document_id: int) -> threading.Lock:
    with _locks_guard:
        lock = _document_locks.get(document_id)
        if lock is None:
            lock = _document_locks[document_id] = threading.Lock()
        return lock


class OnlineReader(ServiceStores):
    def text(self, document_id: int, online: OnlineReading = NO_LIMITS) -> tuple[str, bool]:
        """The stored OCR text, or OCR now (and store it). Returns the text and whether OCR ran.

        OCR now is bounded: a document of more than ``online_max_pages`` pages is left to the
        pipeline (``LeftToPipeline``), with every one of ``online.slots`` taken the call refuses
        at once (``OcrBusy``), and the reading stops once ``online_ocr_seconds`` are spent
        (Tesseract mid-page) or between pages once ``online.client_gone`` is set (the document
        stays uploaded: ``LeftToPipeline``). Identical requests racing for one document, in this
        process or in another server on the same database, wait for the first one's OCR and
        read its stored text."""
        if online.language is not None:
            check_languages(online.language)
        with _document_lock(document_id):
            return self._text(document_id, online)

    def _text(self, document_id: int, online: OnlineReading) -> tuple[str, bool]:
        settings = self.settings
        deadline = time.monotonic() + settings.online_ocr_seconds
        stop = _stop_rule(settings.online_ocr_seconds, deadline, online.client_gone)
        while True:
            with session_scope(self.database) as session:
                document = existing_document(session, document_id)
                stored = document_texts(session, [document_id], prefer=settings.ocr_mode)
                if document_id in stored and online.language is None:
                    return stored[document_id], False
                key, content_type = document.storage_key, document.content_type
                if document.original_deleted_at is not None:
                    raise OriginalExpired(document_id, document.original_deleted_at)
                if document.pages > settings.online_max_pages:
                    raise LeftToPipeline(
                        document_id,
                        f"it has {document.pages} pages; online OCR reads at most "
                        f"{settings.online_max_pages}",
                    )
                now = datetime.now(UTC)
                lease = timedelta(seconds=settings.online_ocr_seconds + CLAIM_MARGIN_SECONDS)
                if claim_online_ocr(session, document_id, now, now + lease):
                    break
            # Another API process is reading this document: its text will be stored shortly.
            if (why := stop()) is not None:
                raise LeftToPipeline(document_id, f"another request is reading it and {why}")
            time.sleep(CLAIM_POLL_SECONDS)
        try:
            return self._read_claimed(document_id, key, content_type, online, stop, deadline)
        finally:
            with session_scope(self.database) as session:
                release_online_ocr(session, document_id)

    def _read_claimed(
        self,
        document_id: int,
        key: str,
        content_type: str,
        online: OnlineReading,
        stop: Callable[[], str | None],
        deadline: float,
    ) -> tuple[str, bool]:
        slots = online.slots
        if slots is not None and not slots.acquire(blocking=False):
            raise OcrBusy(
                f"every online OCR slot is busy: document {document_id} is stored and the "
                f"pipeline will read it; POST /predict/document/{document_id} again in a few "
                "seconds for a prediction now"
            )
        try:
            pages = ocr_document(
                online.original if online.original is not None else self.store.get_bytes(key),
                content_type,
                ocr_options(self.settings, online.language),
                stop=stop,
                deadline=deadline,
            )
        except OcrStopped as stopped:
            raise LeftToPipeline(document_id, str(stopped)) from stopped
        except ObjectNotFound as missing:
            with session_scope(self.database) as session:
                document = session.get(Document, document_id)
                if document is not None:
                    mark_failed(session, document, f"original file {key} is missing")
            raise OriginalMissing(document_id) from missing
        except Exception as error:
            with session_scope(self.database) as session:
                document = session.get(Document, document_id)
                if document is not None:
                    mark_failed(session, document, f"OCR failed: {type(error).__name__}: {error}")
            raise
        finally:
            if slots is not None:
                slots.release()
        with session_scope(self.database) as session:
            document = session.get(Document, document_id)
            if document is not None:
                replace_ocr_results(session, document, pages)
        return "\n\n".join(page.text for page in pages), True

    def predict(
        self,
        classifier: DocumentClassifier,
        model_name: str,
        model_version: str,
        document_id: int,
        online: OnlineReading = NO_LIMITS,
        source: str = "api",
    ) -> DocumentPrediction:
        """One stored document's prediction now (OCR first if it has none), recorded as made
        by ``source`` (``api``, ``cli``)."""
        text, ran_ocr = self.text(document_id, online)
        scored = classifier.score_text(text)
        with session_scope(self.database) as session:
            prediction: Prediction = add_prediction(
                session,
                document_id,
                model_name,
                model_version,
                scored.predicted_class,
                scored.confidence,
                scored.scores,
                source=source,
            )
            document = session.get(Document, document_id)
            if document is not None:
                document.status = DocumentStatus.PREDICTED
            session.flush()
            prediction_id = prediction.id
        return DocumentPrediction(document_id, scored, prediction_id, ran_ocr)


def _stop_rule(
    budget_seconds: float, deadline: float, client_gone: threading.Event | None
) -> Callable[[], str | None]:
    def stop() -> str | None:
        if client_gone is not None and client_gone.is_set():
            return "the client went away"
        if time.monotonic() > deadline:
            return f"the time allowed ({budget_seconds:g} s) ran out"
        return None

    return stop
