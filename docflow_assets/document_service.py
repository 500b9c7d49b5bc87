"""The one conductor of document processing, batch and online alike: check the originals, OCR
and record, featurise, score and record, with every status change and the quality figures the
data-quality checks judge. The Dagster assets, the API and the CLI call it; none repeats it."""

from __future__ import annotations

import io
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import pandas as pd
import pypdfium2 as pdfium
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Session

from docflow_assets.ingest import RejectedDocument, normalise_label
from docflow_assets.ml.feature_store import (
    StoredFeatures,
    drop_document_features,
    features_key,
    load_features,
    save_features,
)
from docflow_assets.ml.registry import Registry
from docflow_assets.ml.training_set import (
    class_distribution,
    current_snapshot_labels,
    total_variation,
)
from docflow_assets.ocr.engines import check_languages
from docflow_assets.ocr.language import page_script, script_mismatch
from docflow_assets.ocr.pages import page_image
from docflow_assets.ocr.pipeline import (
    OcrOptions,
    OcrRequest,
    OcrStopped,
    ocr_document,
    ocr_documents,
)
from docflow_assets.ocr.preprocess import PreprocessConfig
from docflow_assets.settings import DocflowSettings
from docflow_assets.store.database import session_scope
from docflow_assets.store.models import Document, DocumentStatus, OcrResult, Prediction
from docflow_assets.store.objects import ObjectNotFound, ObjectStore, open_object_store
from docflow_assets.store.repository import (
    GATE_SPLIT,
    PredictionFilter,
    ReviewFilter,
    add_prediction,
    all_predictions,
    batch_documents,
    claim_online_ocr,
    delete_document,
    document_pages,
    document_texts,
    documents_by_id,
    documents_to_score,
    failures_by_kind,
    last_gate_verdict,
    latest_predictions,
    mark_failed,
    model_metrics,
    oldest_waiting_upload,
    originals_past_retention,
    page_of_predictions,
    pages_read_by_engine,
    prediction_classes,
    prediction_history,
    recent_predicted_classes,
    record_model_metrics,
    release_online_ocr,
    replace_ocr_results,
    review_page,
    search_text,
    set_label,
    status_counts,
)

if TYPE_CHECKING:
    from docflow_assets.ml.classifier import DocumentClassifier, ScoredText

# A page read with less mean word confidence than this counts as a low-confidence page.
MIN_MEAN_CONFIDENCE = 0.6
DRIFT_WINDOW = 500
# An online OCR lease outlives the OCR budget by this much (the last page may overrun it), so a
# server that dies mid-read holds the document for a minute or so at most.
CLAIM_MARGIN_SECONDS = 60.0
CLAIM_POLL_SECONDS = 0.2
READY_FOR_FEATURES = (DocumentStatus.OCR_DONE, DocumentStatus.PREDICTED)
Row = dict[str, object]


class DocumentNotFound(LookupError):
    def __init__(self, document_id: int) -> None:
        super().__init__(f"document {document_id} does not exist")


class OriginalMissing(LookupError):
    """The document is registered but its original is gone from the object store."""

    def __init__(self, document_id: int) -> None:
        super().__init__(f"original file of document {document_id} is missing")


class OriginalExpired(LookupError):
    """The retention period removed the document's original (its text and predictions stay)."""

    def __init__(self, document_id: int, when: datetime) -> None:
        super().__init__(
            f"the original file of document {document_id} was deleted on {when:%Y-%m-%d} after "
            "the retention period (DOCFLOW_RETENTION_DAYS); its text and predictions are kept"
        )


class InvalidRequest(ValueError):
    """A value the caller sent that no document could take (an unknown status, a bad label)."""


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
class OriginalsReport:
    documents: int
    pages: int
    total_bytes: int
    missing: list[int]
    content_types: dict[str, int]
    preview: list[Row]


@dataclass(frozen=True)
class OcrReport:
    documents: int
    failed: list[int]
    page_confidences: list[float]
    empty_pages: int
    judged_pages: int
    mismatched_documents: list[int]
    scripts: dict[str, int]
    read_by: dict[str, int]
    seconds: float
    preview: list[Row]

    @property
    def pages(self) -> int:
        return len(self.page_confidences)

    def _share(self, count: float, of: int) -> float:
        return count / of if of else 0.0

    @property
    def empty_rate(self) -> float:
        return self._share(self.empty_pages, self.pages)

    @property
    def low_confidence_rate(self) -> float:
        low = sum(c < MIN_MEAN_CONFIDENCE for c in self.page_confidences)
        return self._share(low, self.pages)

    @property
    def language_mismatch_rate(self) -> float:
        return self._share(len(self.mismatched_documents), self.judged_pages)

    @property
    def mean_confidence(self) -> float:
        return self._share(sum(self.page_confidences), self.pages)


@dataclass(frozen=True)
class FeaturesReport:
    rows: int
    features: int
    nonzero: int
    model_version: str
    key: str
    seconds: float


@dataclass(frozen=True)
class ScoresReport:
    model_name: str
    model_version: str
    by_class: dict[str, int]
    preview: list[Row]


@dataclass(frozen=True)
class ScoringBacklog:
    """The served version, and (id, upload day) of the documents it should score."""

    model_version: str | None
    documents: list[tuple[int, date]]


@dataclass(frozen=True)
class LabelReport:
    labelled: dict[int, str]  # document id -> the label now set
    refused: dict[int, str]  # document id -> why its label was not set


@dataclass(frozen=True)
class PipelineState:
    documents_by_status: dict[str, int]
    # Age of the oldest upload not yet read; 0 when nothing waits.
    oldest_waiting_seconds: float
    pages_read_by_engine: dict[str, int]
    failures_by_kind: dict[str, int]
    # The version the deployment gate judged last and whether it passed; None before any.
    last_gate_verdict: tuple[str, bool] | None


@dataclass(frozen=True)
class DeletionReport:
    document_id: int
    ocr_rows: int
    predictions: int
    feature_rows: int
    original: str  # the object key removed


@dataclass(frozen=True)
class DocumentPrediction:
    document_id: int
    scored: ScoredText
    prediction_id: int
    ran_ocr: bool


def ocr_options(settings: DocflowSettings, language: str | None = None) -> OcrOptions:
    """The OCR the settings ask for (``language`` instead of the configured languages)."""
    return OcrOptions(
        language or settings.ocr_languages,
        settings.render_dpi,
        settings.max_image_pixels,
        PreprocessConfig.parse(settings.ocr_preprocess),
        settings.ocr_mode,
        settings.ocr_cascade_threshold,
    )


@dataclass(frozen=True)
class OnlineReading:
    """How one request may have a document read now."""

    language: str | None = None  # None: the configured languages, and stored text is kept
    slots: threading.Semaphore | None = None  # online OCR at once; none free: OcrBusy
    client_gone: threading.Event | None = None  # set when nobody waits for the answer
    original: bytes | None = None  # the document's bytes, when the caller holds them already


NO_LIMITS = OnlineReading()
# Pages shown to a reviewer: enough to read, small enough to send.
PREVIEW_SIDE = 1400
PREVIEW_DPI = 100
EXPORT_COLUMNS = [
    "prediction_id",
    "document_id",
    "filename",
    "upload_date",
    "status",
    "label",
    "predicted_class",
    "confidence",
    "model_name",
    "model_version",
    "source",
    "predicted_at",
]

_locks_guard = threading.Lock()
_document_locks: weakref.WeakValueDictionary[int, threading.Lock] = weakref.WeakValueDictionary()


def _document_lock(document_id: int) -> threading.Lock:
    with _locks_guard:
        lock = _document_locks.get(document_id)
        if lock is None:
            lock = _document_locks[document_id] = threading.Lock()
        return lock


class DocumentService:
    """Processing of stored documents, over one set of stores built once."""

    def __init__(self, settings: DocflowSettings, store: ObjectStore, registry: Registry) -> None:
        self.settings = settings
        self.store = store
        self.registry = registry
        self.database = settings.resolved_database_url

    @classmethod
    def from_settings(
        cls, settings: DocflowSettings, registry: Registry | None = None
    ) -> DocumentService:
        """The settings' object store and registry (or ``registry``, when the caller holds one)."""
        return cls(
            settings,
            open_object_store(settings.resolved_object_store, settings.s3_endpoint_url),
            registry or Registry.from_settings(settings),
        )

    # -- the pipeline's steps, one upload day (or a batch of it) at a time --------------------

    def check_originals(self, day: date, document_ids: Sequence[int]) -> OriginalsReport:
        """Marks failed the documents whose original is gone from the object store."""
        with session_scope(self.database) as session:
            documents = batch_documents(session, day, document_ids)
            missing = []
            for document in documents:
                if document.status == DocumentStatus.FAILED:
                    continue
                if not self.store.exists(document.storage_key):
                    mark_failed(
                        session, document, f"original file {document.storage_key} is missing"
                    )
                    missing.append(document.id)
            return OriginalsReport(
                documents=len(documents),
                pages=sum(document.pages for document in documents),
                total_bytes=sum(document.size_bytes for document in documents),
                missing=missing,
                content_types=dict(Counter(document.content_type for document in documents)),
                preview=[
                    {
                        "id": d.id,
                        "filename": d.filename,
                        "type": d.content_type,
                        "pages": d.pages,
                        "label": d.label,
                        "status": d.status,
                    }
                    for d in documents[:10]
                ],
            )

    def read(self, day: date, document_ids: Sequence[int]) -> OcrReport:
        """OCR the batch (one process per core) and record every page; a document that cannot
        be read is marked failed with its reason and holds up no other."""
        with session_scope(self.database) as session:
            documents = [
                document
                for document in batch_documents(session, day, document_ids)
                if document.status != DocumentStatus.FAILED
            ]
            requests = []
            for document in documents:
                try:
                    data = self.store.get_bytes(document.storage_key)
                except ObjectNotFound:
                    mark_failed(
                        session, document, f"original file {document.storage_key} is missing"
                    )
                    continue
                requests.append(OcrRequest(document.id, data, document.content_type))
        started = time.perf_counter()
        results = ocr_documents(requests, ocr_options(self.settings), self.settings.ocr_workers)
        seconds = time.perf_counter() - started
        failed: list[int] = []
        confidences: list[float] = []
        empty = judged = 0
        mismatched: list[int] = []
        scripts: Counter[str] = Counter()
        read_by: Counter[str] = Counter()
        preview: list[Row] = []
        with session_scope(self.database) as session:
            by_id = {document.id: session.merge(document) for document in documents}
            for result in results:
                document = by_id[result.document_id]
                if result.error:
                    mark_failed(session, document, f"OCR failed: {result.error}")
                    failed.append(document.id)
                    continue
                replace_ocr_results(session, document, result.pages)
                for page in result.pages:
                    confidences.append(page.mean_confidence)
                    read_by[str(page.preprocessing.get("read_by", page.engine))] += 1
                    empty += not page.text.strip()
                    script = page_script(page)
                    mismatch = script_mismatch(script, page.language)
                    if mismatch is not None:
                        judged += 1
                        scripts[str(script)] += 1
                    if mismatch:
                        mismatched.append(document.id)
                if len(preview) < 5:
                    preview.append(
                        {"id": document.id, "text": result.text[:120].replace("\n", " ")}
                    )
        return OcrReport(
            documents=len(results) - len(failed),
            failed=failed,
            page_confidences=confidences,
            empty_pages=empty,
            judged_pages=judged,
            mismatched_documents=sorted(set(mismatched)),
            scripts=dict(scripts),
            read_by=dict(read_by),
            seconds=seconds,
            preview=preview,
        )

    def featurise(self, day: date, document_ids: Sequence[int]) -> FeaturesReport | None:
        """TF-IDF rows of the batch under the deployed model's vectorizer, stored with that
        version; None while no model is deployed."""
        deployed = self.registry.load_alias(self.settings.model_alias)
        if deployed is None:
            return None
        with session_scope(self.database) as session:
            ids = [
                document.id
                for document in batch_documents(session, day, document_ids)
                if document.status in READY_FOR_FEATURES
            ]
            texts = document_texts(session, ids, prefer=self.settings.ocr_mode)
        started = time.perf_counter()
        matrix = deployed.classifier.vectorizer.transform([texts.get(i, "") for i in ids])
        key = features_key(day, document_ids)
        save_features(self.store, key, StoredFeatures(ids, matrix, deployed.version))
        return FeaturesReport(
            rows=len(ids),
            features=int(matrix.shape[1]),
            nonzero=int(matrix.nnz),
            model_version=deployed.version,
            key=key,
            seconds=time.perf_counter() - started,
        )

    def score(self, day: date, document_ids: Sequence[int]) -> ScoresReport | None:
        """Scores the batch's stored features with the version that made them (even if the
        alias has moved since) and records each prediction; None when there are no features."""
        try:
            features = load_features(self.store, features_key(day, document_ids))
        except ObjectNotFound:
            return None
        deployed = self.registry.load(features.model_version)
        ids = features.document_ids
        scored = dict(zip(ids, deployed.classifier.score_features(features.matrix), strict=True))
        classes: Counter[str] = Counter()
        preview: list[Row] = []
        with session_scope(self.database) as session:
            for document in batch_documents(session, day, ids):
                result = scored[document.id]
                add_prediction(
                    session,
                    document.id,
                    deployed.name,
                    deployed.version,
                    result.predicted_class,
                    result.confidence,
                    result.scores,
                    source="batch",
                )
                document.status = DocumentStatus.PREDICTED
                classes[result.predicted_class] += 1
                if len(preview) < 10:
                    preview.append(
                        {
                            "id": document.id,
                            "label": document.label,
                            "predicted": result.predicted_class,
                            "confidence": round(result.confidence, 3),
                        }
                    )
        return ScoresReport(deployed.name, deployed.version, dict(classes), preview)

    def scoring_backlog(self, limit: int, exclude: Collection[int] = ()) -> ScoringBacklog:
        """What the served model should score next (at most ``limit`` documents, none of
        ``exclude``): documents read but never predicted, then those the re-score policy
        (DOCFLOW_RESCORE_ON_DEPLOY) hands to a newly deployed version."""
        version = self.registry.version_for_alias(self.settings.model_alias)
        if version is None:
            return ScoringBacklog(None, [])
        with session_scope(self.database) as session:
            documents = documents_to_score(
                session,
                self.settings.model_name,
                version,
                self.settings.rescore_on_deploy,
                limit,
                exclude,
            )
        return ScoringBacklog(version, documents)

    def class_drift(self) -> tuple[float, int]:
        """Total variation between the recent predicted classes and the training labels, and
        how many recent predictions it judged."""
        with session_scope(self.database) as session:
            recent = recent_predicted_classes(session, DRIFT_WINDOW)
        found = current_snapshot_labels(self.store)
        training = class_distribution(found["label"].tolist()) if found is not None else {}
        if not recent or not training:
            return 0.0, len(recent)
        return total_variation(class_distribution(recent), training), len(recent)

    def day_counts(self, day: date) -> dict[str, int]:
        """One upload day's documents by status: what a day partition holds, all batches."""
        with session_scope(self.database) as session:
            return status_counts(session, upload_date=day)

    # -- online: one document inside a request ------------------------------------------------

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
                document = _existing(session, document_id)
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

    # -- records: what people look up and correct --------------------------------------------

    def document(self, document_id: int) -> Document:
        with session_scope(self.database) as session:
            document = _existing(session, document_id)
            return document

    def document_with_pages(self, document_id: int) -> tuple[Document, list[OcrResult]]:
        with session_scope(self.database) as session:
            document = _existing(session, document_id)
            return document, document_pages(session, document_id)

    def original(self, document_id: int) -> tuple[Document, bytes]:
        """The document and its file as uploaded."""
        document = self.document(document_id)
        if document.original_deleted_at is not None:
            raise OriginalExpired(document_id, document.original_deleted_at)
        try:
            return document, self.store.get_bytes(document.storage_key)
        except ObjectNotFound as missing:
            raise OriginalMissing(document_id) from missing

    def label(self, document_id: int, label: str, source: str) -> Document:
        """Sets a document's label (what the next training snapshot learns from)."""
        try:
            clean = normalise_label(label)
        except RejectedDocument as error:
            raise InvalidRequest(error.message) from error
        if clean is None:
            raise InvalidRequest("label must not be blank")
        with session_scope(self.database) as session:
            document = _existing(session, document_id)
            set_label(session, document, clean, source)
            return document

    def label_many(
        self, typed: Mapping[int, str], accepted: Sequence[int], source: str
    ) -> LabelReport:
        """Many labels at once (the review list): each typed label, and for accepted documents
        with none typed, their latest predicted class. A bad label or an unknown document is
        reported and the others are still set."""
        report = LabelReport({}, {})
        with session_scope(self.database) as session:
            predicted = latest_predictions(session, accepted)
            wanted = {i: predicted[i].predicted_class for i in accepted if i in predicted}
            wanted.update({i: label for i, label in typed.items() if label.strip()})
            found = {document.id: document for document in documents_by_id(session, list(wanted))}
            for document_id, label in sorted(wanted.items()):
                document = found.get(document_id)
                if document is None:
                    report.refused[document_id] = "no such document"
                    continue
                try:
                    clean = normalise_label(label)
                except RejectedDocument as error:
                    report.refused[document_id] = error.message
                    continue
                if clean is not None and clean != document.label:
                    set_label(session, document, clean, source)
                    report.labelled[document_id] = clean
        return report

    def documents(
        self, page: int, page_size: int, status: str | None = None, label: str | None = None
    ) -> tuple[int, list[tuple[Document, Prediction | None]]]:
        """One page of documents, each with its latest prediction, and how many match in all."""
        known = [value.value for value in DocumentStatus]
        if status and status not in known:
            raise InvalidRequest(f"unknown status {status!r}; known: {', '.join(known)}")
        return self.review(
            ReviewFilter(status=status, label=label, order="oldest"), page, page_size
        )

    def search(
        self, query: str, page: int, page_size: int, status: str | None = None
    ) -> tuple[int, list[tuple[Document, Prediction | None, str]]]:
        """Documents whose OCR text holds every word of ``query``, best match first, each with
        its latest prediction and a snippet; full-text search of the database (SQLite FTS5,
        PostgreSQL text search)."""
        with session_scope(self.database) as session:
            matches = search_text(session, query)
            snippets = dict(matches)
            documents = {
                document.id: document
                for document in documents_by_id(session, list(snippets))
                if not status or document.status == status
            }
            ranked = [document_id for document_id, _ in matches if document_id in documents]
            shown = ranked[(page - 1) * page_size : page * page_size]
            latest = latest_predictions(session, shown)
            return len(ranked), [(documents[i], latest.get(i), snippets[i]) for i in shown]

    def predictions(
        self, where: PredictionFilter, page: int, page_size: int
    ) -> tuple[int, list[tuple[Prediction, Document]]]:
        """One page of predictions (newest first) with their documents, and the count."""
        with session_scope(self.database) as session:
            return page_of_predictions(session, where, (page - 1) * page_size, page_size)

    def predictions_table(self, where: PredictionFilter) -> pd.DataFrame:
        """Every matching prediction, oldest first, one row each: what an export holds."""
        with session_scope(self.database) as session:
            rows = all_predictions(session, where)
        return pd.DataFrame(
            [
                {
                    "prediction_id": prediction.id,
                    "document_id": document.id,
                    "filename": document.filename,
                    "upload_date": document.upload_date.isoformat(),
                    "status": document.status,
                    "label": document.label,
                    "predicted_class": prediction.predicted_class,
                    "confidence": prediction.confidence,
                    "model_name": prediction.model_name,
                    "model_version": prediction.model_version,
                    "source": prediction.source,
                    "predicted_at": prediction.created_at.isoformat(),
                }
                for prediction, document in rows
            ],
            columns=EXPORT_COLUMNS,
        )

    def review(
        self, where: ReviewFilter, page: int, page_size: int
    ) -> tuple[int, list[tuple[Document, Prediction | None]]]:
        """A page of documents for review, each with its latest prediction."""
        with session_scope(self.database) as session:
            return review_page(session, where, (page - 1) * page_size, page_size)

    def predicted_classes(self) -> list[str]:
        with session_scope(self.database) as session:
            return prediction_classes(session)

    def page_image(self, document_id: int, number: int, max_side: int = PREVIEW_SIDE) -> bytes:
        """Page ``number`` (from 1) of the original as a PNG at most ``max_side`` px, to look
        at beside its text."""
        document, data = self.original(document_id)
        if not 1 <= number <= document.pages:
            raise InvalidRequest(f"document {document_id} has {document.pages} pages")
        try:
            image = page_image(
                data, document.content_type, number - 1, PREVIEW_DPI, self.settings.max_image_pixels
            )
        except (OSError, EOFError, ValueError, pdfium.PdfiumError) as error:
            raise InvalidRequest(
                f"page {number} of document {document_id} cannot be read: {error}"
            ) from error
        image.thumbnail((max_side, max_side))  # pages come as 8-bit RGB or grey
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()

    def delete(self, document_id: int) -> DeletionReport:
        """Removes a document: its row, OCR text, predictions, feature rows and original. Its
        label leaves every later training snapshot; snapshots already taken, and the models
        trained on them, keep what they learned (a snapshot holds the text and the label)."""
        with session_scope(self.database) as session:
            document = _existing(session, document_id)
            key, day = document.storage_key, document.upload_date
            ocr_rows, predictions = delete_document(session, document)
        # The row goes first: were the store to fail now, an orphan file is left, never a
        # document whose original is gone.
        feature_rows = drop_document_features(self.store, day, document_id)
        self.store.delete(key)
        return DeletionReport(document_id, ocr_rows, predictions, feature_rows, key)

    def expire_originals(self, now: datetime, limit: int = 10_000) -> list[int]:
        """Deletes the original files of processed documents older than ``retention_days``
        (none while it is unset); returns their ids. Text, predictions and labels stay."""
        days = self.settings.retention_days
        if days is None:
            return []
        with session_scope(self.database) as session:
            expired = originals_past_retention(session, now - timedelta(days=days), limit)
            for document in expired:
                self.store.delete(document.storage_key)
                document.original_deleted_at = now
            return [document.id for document in expired]

    def history(self, document_id: int) -> list[Prediction]:
        """Every prediction recorded for the document, oldest first."""
        with session_scope(self.database) as session:
            _existing(session, document_id)
            return prediction_history(session, document_id)

    def model_metrics(self, model_name: str, model_version: str) -> dict[str, float]:
        with session_scope(self.database) as session:
            return model_metrics(session, model_name, model_version)

    def record_training(
        self, model_name: str, model_version: str, figures: dict[str, float], passed: bool
    ) -> None:
        """A trained version's cross-validated figures and the gate's verdict on it."""
        with session_scope(self.database) as session:
            record_model_metrics(session, model_name, model_version, "test", figures)
            record_model_metrics(
                session, model_name, model_version, GATE_SPLIT, {"passed": float(passed)}
            )

    def pipeline_state(self) -> PipelineState:
        """What an operator watches: documents by status, the backlog, pages read, failures,
        and the deployment gate's last verdict."""
        with session_scope(self.database) as session:
            oldest = oldest_waiting_upload(session)
            return PipelineState(
                documents_by_status=status_counts(session),
                oldest_waiting_seconds=(
                    (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
                ),
                pages_read_by_engine=pages_read_by_engine(session),
                failures_by_kind=failures_by_kind(session),
                last_gate_verdict=last_gate_verdict(session),
            )

    def database_ping(self) -> None:
        """Raises when the database does not answer."""
        with session_scope(self.database) as session:
            session.execute(sql_text("SELECT 1"))


def _existing(session: Session, document_id: int) -> Document:
    document = session.get(Document, document_id)
    if document is None:
        raise DocumentNotFound(document_id)
    return document


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
