"""Predictions: recorded, listed, filtered for review and export, and what to score next."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, func, or_, select, update
from sqlalchemy.orm import Session

from docflow_assets.store.models import Document, DocumentStatus, OcrResult, Prediction


def add_prediction(
    session: Session,
    document_id: int | None,
    model_name: str,
    model_version: str,
    predicted_class: str,
    confidence: float,
    scores: dict[str, float],
    source: str,
) -> Prediction:
    prediction = Prediction(
        document_id=document_id,
        model_name=model_name,
        model_version=model_version,
        predicted_class=predicted_class,
        confidence=confidence,
        all_scores=scores,
        source=source,
    )
    session.add(prediction)
    if document_id is not None:
        newest = {"latest_confidence": confidence, "latest_predicted_class": predicted_class}
        session.execute(update(Document).where(Document.id == document_id).values(**newest))
    return prediction


def scored_since_read(
    session: Session, document_ids: Sequence[int], model_name: str, model_version: str
) -> set[int]:
    """Those of ``document_ids`` that this model version has scored in a batch since their
    current OCR reading (a document read again is scored again)."""
    read = (
        select(OcrResult.document_id, func.max(OcrResult.created_at).label("read_at"))
        .where(OcrResult.document_id.in_(document_ids))
        .group_by(OcrResult.document_id)
        .subquery()
    )
    query = (
        select(Prediction.document_id)
        .join(read, read.c.document_id == Prediction.document_id)
        .where(
            Prediction.source == "batch",
            Prediction.model_name == model_name,
            Prediction.model_version == model_version,
            Prediction.created_at >= read.c.read_at,
        )
    )
    return {int(document_id) for document_id in session.scalars(query) if document_id is not None}


def recent_predicted_classes(session: Session, limit: int) -> list[str]:
    """Classes of the latest batch predictions, newest first."""
    query = (
        select(Prediction.predicted_class)
        .where(Prediction.source == "batch")
        .order_by(Prediction.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def latest_predictions(session: Session, document_ids: Sequence[int]) -> dict[int, Prediction]:
    """Each document's newest prediction, for those that have one."""
    newest = (
        select(func.max(Prediction.id))
        .where(Prediction.document_id.in_(document_ids))
        .group_by(Prediction.document_id)
    )
    rows = session.scalars(select(Prediction).where(Prediction.id.in_(newest)))
    return {row.document_id: row for row in rows if row.document_id is not None}


def documents_to_score(
    session: Session,
    model_name: str,
    model_version: str,
    rescore: str,
    limit: int,
    exclude: Collection[int] = (),
) -> list[tuple[int, date]]:
    """(id, upload day) of documents the served version should score, oldest first: those read
    but never predicted, then, per ``rescore`` (none, unconfirmed, all), predicted documents
    whose newest prediction is another version's (unconfirmed: only those without a label)."""
    waiting = (
        select(Document.id, Document.upload_date)
        .where(Document.status == DocumentStatus.OCR_DONE, Document.id.not_in(exclude))
        .order_by(Document.id)
        .limit(limit)
    )
    found = [(row.id, row.upload_date) for row in session.execute(waiting)]
    if rescore == "none" or len(found) >= limit:
        return found
    newest = (
        select(Prediction.document_id, func.max(Prediction.id).label("newest"))
        .group_by(Prediction.document_id)
        .subquery()
    )
    outdated = (
        select(Document.id, Document.upload_date)
        .join(newest, newest.c.document_id == Document.id)
        .join(Prediction, Prediction.id == newest.c.newest)
        .where(
            Document.status == DocumentStatus.PREDICTED,
            Document.id.not_in(exclude),
            or_(Prediction.model_name != model_name, Prediction.model_version != model_version),
        )
        .order_by(Document.id)
        .limit(limit - len(found))
    )
    if rescore == "unconfirmed":
        outdated = outdated.where(Document.label.is_(None))
    return found + [(row.id, row.upload_date) for row in session.execute(outdated)]


def prediction_history(session: Session, document_id: int) -> list[Prediction]:
    query = select(Prediction).where(Prediction.document_id == document_id)
    return list(session.scalars(query.order_by(Prediction.id)))


def documents_with_predictions(session: Session, document_ids: Sequence[int]) -> int:
    query = select(func.count(func.distinct(Prediction.document_id))).where(
        Prediction.document_id.in_(document_ids)
    )
    return int(session.scalar(query) or 0)


@dataclass(frozen=True)
class PredictionFilter:
    """Which predictions a listing or an export holds (None: any)."""

    predicted_class: str | None = None
    source: str | None = None
    model_version: str | None = None
    max_confidence: float | None = None  # the unsure ones, for review


def _filtered_predictions(where: PredictionFilter) -> Select[Prediction, Document]:
    query = select(Prediction, Document).join(Document, Prediction.document_id == Document.id)
    if where.predicted_class is not None:
        query = query.where(Prediction.predicted_class == where.predicted_class)
    if where.source is not None:
        query = query.where(Prediction.source == where.source)
    if where.model_version is not None:
        query = query.where(Prediction.model_version == where.model_version)
    if where.max_confidence is not None:
        query = query.where(Prediction.confidence <= where.max_confidence)
    return query


def page_of_predictions(
    session: Session, where: PredictionFilter, offset: int, limit: int
) -> tuple[int, list[tuple[Prediction, Document]]]:
    """Predictions of stored documents, newest first, with their documents and the count of
    all that match."""
    query = _filtered_predictions(where)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(Prediction.id.desc()).offset(offset).limit(limit))
    return int(total), [(prediction, document) for prediction, document in rows]


# What an export holds of a prediction and its document: columns, not ORM objects, so that a
# long export keeps no identity map growing with it (45 MB at 2x10^4 rows as objects).
EXPORTED_COLUMNS = (
    Prediction.id.label("prediction_id"),
    Document.id.label("document_id"),
    Document.filename,
    Document.upload_date,
    Document.status,
    Document.label,
    Prediction.predicted_class,
    Prediction.confidence,
    Prediction.model_name,
    Prediction.model_version,
    Prediction.source,
    Prediction.created_at.label("predicted_at"),
)


def predictions_in_batches(
    session: Session, where: PredictionFilter, batch_rows: int
) -> Iterator[list[dict[str, Any]]]:
    """Every matching prediction with its document (``EXPORTED_COLUMNS``), oldest first,
    ``batch_rows`` at a time, fetched as they are needed (a server-side cursor on PostgreSQL)."""
    query = (
        _filtered_predictions(where)
        .with_only_columns(*EXPORTED_COLUMNS, maintain_column_froms=True)
        .order_by(Prediction.id)
    )
    rows = session.execute(query.execution_options(yield_per=batch_rows))
    for batch in rows.mappings().partitions():
        yield [dict(row) for row in batch]


@dataclass(frozen=True)
class ReviewFilter:
    """Which documents a listing shows, with their latest prediction: by status, label (or
    none yet), predicted class, in an order."""

    status: str | None = None
    label: str | None = None
    unlabelled: bool = False
    predicted_class: str | None = None
    # oldest or newest first, or the least confident prediction first (none last)
    order: Literal["oldest", "newest", "unsure"] = "newest"


def _document_conditions(where: ReviewFilter) -> list[ColumnElement[bool]]:
    conditions = []
    if where.status:
        conditions.append(Document.status == where.status)
    if where.label:
        conditions.append(Document.label == where.label)
    if where.unlabelled:
        conditions.append(Document.label.is_(None))
    return conditions


def review_page(
    session: Session, where: ReviewFilter, offset: int, limit: int
) -> tuple[int, list[tuple[Document, Prediction | None]]]:
    """Documents with their latest prediction, filtered and ordered for review. The page is
    read from the documents table alone, which keeps its newest prediction's confidence and
    class in indexed columns, and only its documents' predictions are looked up: the count and
    the page stay index scans of one table however many predictions the home holds."""
    documents = select(Document).where(*_document_conditions(where))
    if where.predicted_class:
        documents = documents.where(Document.latest_predicted_class == where.predicted_class)
    counted = int(session.scalar(select(func.count()).select_from(documents.subquery())) or 0)
    if where.order == "unsure":
        page = _least_confident_first(session, documents, offset, limit)
    else:
        by_id = Document.id if where.order == "oldest" else Document.id.desc()
        page = list(session.scalars(documents.order_by(by_id).offset(offset).limit(limit)))
    latest = latest_predictions(session, [document.id for document in page])
    return counted, [(document, latest.get(document.id)) for document in page]


def _least_confident_first(
    session: Session, documents: Select[Document], offset: int, limit: int
) -> list[Document]:
    """The predicted documents by confidence, then those without a prediction, as two index
    scans (databases disagree on where NULL sorts, and an expression on it uses no index)."""
    predicted = documents.where(Document.latest_confidence.is_not(None))
    page = list(
        session.scalars(
            predicted.order_by(Document.latest_confidence, Document.id).offset(offset).limit(limit)
        )
    )
    if len(page) == limit:
        return page
    before = offset
    if offset:
        before = int(session.scalar(select(func.count()).select_from(predicted.subquery())) or 0)
    unpredicted = documents.where(Document.latest_confidence.is_(None)).order_by(Document.id)
    rest = unpredicted.offset(max(0, offset - before)).limit(limit - len(page))
    return page + list(session.scalars(rest))


def prediction_classes(session: Session) -> list[str]:
    query = select(Prediction.predicted_class).distinct()
    return list(session.scalars(query.order_by(Prediction.predicted_class)))
