"""What people look up and correct: documents, pages, labels, predictions, deletions."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import IO, Any

import pandas as pd
import pypdfium2 as pdfium
from sqlalchemy import text as sql_text

from docflow_assets.document_service.errors import (
    InvalidRequest,
    NotReadYet,
    OriginalExpired,
    OriginalMissing,
)
from docflow_assets.document_service.records_of import DocumentRecord, PageRecord, PredictionRecord
from docflow_assets.document_service.reports import (
    DeletionReport,
    DocumentsOutcome,
    LabelReport,
    PipelineState,
)
from docflow_assets.document_service.stores import ServiceStores, existing_document
from docflow_assets.exports.formats import (
    Export,
    ExportFormat,
    export_reading,
    page_words,
    recorded_page_sizes,
)
from docflow_assets.exports.geometry import PageWords
from docflow_assets.exports.tables import EXPORT_COLUMNS, TableFormat, write_table
from docflow_assets.ingest import RejectedDocument, normalise_label
from docflow_assets.ml.feature_store import drop_document_features
from docflow_assets.ocr.pages import page_image, page_sizes
from docflow_assets.page_text import PageText, Word
from docflow_assets.store.database import session_scope
from docflow_assets.store.models import DocumentStatus
from docflow_assets.store.objects import ObjectNotFound
from docflow_assets.store.repository import (
    GATE_SPLIT,
    PredictionFilter,
    ReviewFilter,
    delete_document,
    document_pages,
    documents_by_id,
    documents_with_predictions,
    failures_by_kind,
    first_upload_day,
    last_gate_verdict,
    latest_model_metrics,
    latest_predictions,
    model_metrics,
    oldest_waiting_upload,
    originals_past_retention,
    page_of_predictions,
    pages_read_by_engine,
    prediction_classes,
    prediction_history,
    predictions_in_batches,
    processed_count,
    record_model_metrics,
    review_page,
    search_snippets,
    search_text,
    set_label,
    settled_count,
    status_counts,
    with_status,
)

# Pages shown to a reviewer: enough to read, small enough to send.
PREVIEW_SIDE = 1400
PREVIEW_DPI = 100
# Rows an export holds in memory at once.
EXPORT_BATCH_ROWS = 5000


class Records(ServiceStores):
    def document(self, document_id: int) -> DocumentRecord:
        with session_scope(self.database) as session:
            return DocumentRecord.of(existing_document(session, document_id))

    def document_with_pages(self, document_id: int) -> tuple[DocumentRecord, list[PageRecord]]:
        with session_scope(self.database) as session:
            document = existing_document(session, document_id)
            pages = document_pages(session, document_id)
            return DocumentRecord.of(document), [PageRecord.of(page) for page in pages]

    def original(self, document_id: int) -> tuple[DocumentRecord, bytes]:
        """The document and its file as uploaded."""
        document = self.document(document_id)
        if document.original_deleted_at is not None:
            raise OriginalExpired(document_id, document.original_deleted_at)
        try:
            return document, self.store.get_bytes(document.storage_key)
        except ObjectNotFound as missing:
            raise OriginalMissing(document_id) from missing

    def label(self, document_id: int, label: str, source: str) -> DocumentRecord:
        """Sets a document's label (what the next training snapshot learns from)."""
        try:
            clean = normalise_label(label)
        except RejectedDocument as error:
            raise InvalidRequest(error.message) from error
        if clean is None:
            raise InvalidRequest("label must not be blank")
        with session_scope(self.database) as session:
            document = existing_document(session, document_id)
            set_label(session, document, clean, source)
            return DocumentRecord.of(document)

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
    ) -> tuple[int, list[tuple[DocumentRecord, PredictionRecord | None]]]:
        """One page of documents, each with its latest prediction, and how many match in all."""
        known = [value.value for value in DocumentStatus]
        if status and status not in known:
            raise InvalidRequest(f"unknown status {status!r}; known: {', '.join(known)}")
        return self.review(
            ReviewFilter(status=status, label=label, order="oldest"), page, page_size
        )

    def search(
        self, query: str, page: int, page_size: int, status: str | None = None
    ) -> tuple[int, list[tuple[DocumentRecord, PredictionRecord | None, str]]]:
        """Documents whose OCR text holds every word of ``query``, best match first (among the
        newest ``MAX_SEARCH_MATCHES`` matching pages), each with its latest prediction and a
        snippet; full-text search of the database (SQLite FTS5, PostgreSQL text search)."""
        with session_scope(self.database) as session:
            ranked = search_text(session, query)
            if status:
                ranked = with_status(session, ranked, status)
            page_ids = ranked[(page - 1) * page_size : page * page_size]
            documents = {document.id: document for document in documents_by_id(session, page_ids)}
            shown = [document_id for document_id in page_ids if document_id in documents]
            latest = latest_predictions(session, shown)
            snippets = search_snippets(session, query, shown)
            return len(ranked), [
                (
                    DocumentRecord.of(documents[i]),
                    PredictionRecord.of_latest(latest.get(i)),
                    snippets.get(i, ""),
                )
                for i in shown
            ]

    def predictions(
        self, where: PredictionFilter, page: int, page_size: int
    ) -> tuple[int, list[tuple[PredictionRecord, DocumentRecord]]]:
        """One page of predictions (newest first) with their documents, and the count."""
        with session_scope(self.database) as session:
            total, rows = page_of_predictions(session, where, (page - 1) * page_size, page_size)
            return total, [
                (PredictionRecord.of(prediction), DocumentRecord.of(document))
                for prediction, document in rows
            ]

    def export_predictions(
        self, where: PredictionFilter, kind: TableFormat, sink: IO[bytes]
    ) -> int:
        """Every matching prediction, oldest first, a row each with its document, label and
        model, written to ``sink`` as CSV or Parquet ``EXPORT_BATCH_ROWS`` rows at a time (what
        an export holds, in memory flat with its size). Returns the rows written."""
        with session_scope(self.database) as session:
            batches = (
                _prediction_rows(batch)
                for batch in predictions_in_batches(session, where, EXPORT_BATCH_ROWS)
            )
            return write_table(batches, kind, sink)

    def review(
        self, where: ReviewFilter, page: int, page_size: int
    ) -> tuple[int, list[tuple[DocumentRecord, PredictionRecord | None]]]:
        """A page of documents for review, each with its latest prediction."""
        with session_scope(self.database) as session:
            total, rows = review_page(session, where, (page - 1) * page_size, page_size)
            return total, [
                (DocumentRecord.of(document), PredictionRecord.of_latest(latest))
                for document, latest in rows
            ]

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
            document = existing_document(session, document_id)
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

    def history(self, document_id: int) -> list[PredictionRecord]:
        """Every prediction recorded for the document, oldest first."""
        with session_scope(self.database) as session:
            existing_document(session, document_id)
            return [PredictionRecord.of(row) for row in prediction_history(session, document_id)]

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

    def processed_count(self, document_ids: Sequence[int]) -> int:
        """How many of the documents have left ``uploaded`` (read, predicted or failed)."""
        with session_scope(self.database) as session:
            return processed_count(session, document_ids)

    def settled_count(self, document_ids: Sequence[int]) -> int:
        """How many of the documents are predicted or failed: nothing more will happen to them."""
        with session_scope(self.database) as session:
            return settled_count(session, document_ids)

    def outcome(self, document_ids: Sequence[int]) -> DocumentsOutcome:
        with session_scope(self.database) as session:
            version, metrics = latest_model_metrics(session)
            return DocumentsOutcome(
                status_counts(session, document_ids),
                documents_with_predictions(session, document_ids),
                version,
                metrics,
            )

    def first_upload_day(self) -> date | None:
        with session_scope(self.database) as session:
            return first_upload_day(session)

    def export(self, document_id: int, kind: ExportFormat) -> Export:
        """The document's stored reading over its original, as a searchable PDF, hOCR or ALTO
        (``NotReadYet`` before OCR has run)."""
        document, pages = self._reading(document_id)
        _, original = self.original(document_id)
        sizes = recorded_page_sizes(pages) or self._page_sizes(original, document.content_type)
        return export_reading(
            kind, original, document.content_type, pages, sizes, document.filename
        )

    def words_on_pages(self, document_id: int) -> list[PageWords]:
        """Each page's stored words with their boxes on the original page (what the review
        page draws over the page image); ``NotReadYet`` before OCR has run. The original is
        fetched only for pages read before their sizes were recorded."""
        document, pages = self._reading(document_id)
        sizes = recorded_page_sizes(pages)
        if sizes is None:
            _, original = self.original(document_id)
            sizes = self._page_sizes(original, document.content_type)
        return page_words(pages, sizes)

    def _reading(self, document_id: int) -> tuple[DocumentRecord, list[PageText]]:
        document, rows = self.document_with_pages(document_id)
        pages = _one_reading(rows, self.settings.ocr_mode)
        if not pages:
            raise NotReadYet(document_id, document.status)
        return document, pages

    def _page_sizes(self, original: bytes, content_type: str) -> list[tuple[int, int]]:
        return page_sizes(
            original, content_type, self.settings.render_dpi, self.settings.max_image_pixels
        )


def _one_reading(rows: Sequence[PageRecord], preferred_engine: str) -> list[PageText]:
    """The pages of one engine's reading: the configured mode's where it read the document,
    else the engine that read the most pages."""
    by_engine: dict[str, list[PageRecord]] = {}
    for row in rows:
        by_engine.setdefault(row.engine, []).append(row)
    if not by_engine:
        return []
    engine = (
        preferred_engine
        if preferred_engine in by_engine
        else max(by_engine, key=lambda name: len(by_engine[name]))
    )
    return [
        PageText(
            engine=row.engine,
            language=row.language,
            words=[Word.from_dict(word) for word in row.words or []],
            seconds=row.seconds,
            preprocessing=dict(row.preprocessing or {}),
            text=row.text,
        )
        for row in sorted(by_engine[engine], key=lambda row: row.page)
    ]


def _prediction_rows(batch: Sequence[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(batch, columns=EXPORT_COLUMNS)
    frame["upload_date"] = [day.isoformat() for day in frame["upload_date"]]
    frame["predicted_at"] = [moment.isoformat() for moment in frame["predicted_at"]]
    return frame
