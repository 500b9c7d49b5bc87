"""Queries and writes the pipeline and the API share, so both see the same rules."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal, cast

from sqlalchemy import CursorResult, Select, delete, func, or_, select, update
from sqlalchemy import text as sql
from sqlalchemy.orm import Session

from docflow_assets.page_text import PageText
from docflow_assets.store.models import (
    Document,
    DocumentStatus,
    ModelMetric,
    OcrResult,
    Prediction,
    as_utc,
)

EXCLUDED_LABELS = ("unknown",)


def batch_documents(
    session: Session, upload_date: date, document_ids: Sequence[int] | None = None
) -> list[Document]:
    """The documents of one upload day, or just the given ids of that day."""
    query = select(Document).where(Document.upload_date == upload_date)
    if document_ids:
        query = query.where(Document.id.in_(document_ids))
    return list(session.scalars(query.order_by(Document.id)))


def new_documents(session: Session, after_id: int, limit: int) -> list[Document]:
    """Documents waiting for processing, oldest first, after the sensor's cursor."""
    query = (
        select(Document)
        .where(Document.id > after_id, Document.status == DocumentStatus.UPLOADED)
        .order_by(Document.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def stalled_documents(
    session: Session, up_to_id: int, uploaded_before: datetime, limit: int
) -> list[Document]:
    """Documents behind the sensor's cursor that are still waiting, though they are old enough
    to have been processed: their run was lost, or their row committed after a later id's."""
    query = (
        select(Document)
        .where(
            Document.id <= up_to_id,
            Document.status == DocumentStatus.UPLOADED,
            Document.uploaded_at < uploaded_before,
        )
        .order_by(Document.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def unfinished_documents(session: Session, document_ids: Sequence[int]) -> list[Document]:
    """Those of the given documents that are neither predicted nor failed."""
    query = select(Document).where(
        Document.id.in_(document_ids),
        Document.status.not_in((DocumentStatus.PREDICTED, DocumentStatus.FAILED)),
    )
    return list(session.scalars(query.order_by(Document.id)))


def mark_failed(session: Session, document: Document, reason: str) -> None:
    document.status = DocumentStatus.FAILED
    document.status_reason = reason[:2000]


def claim_online_ocr(session: Session, document_id: int, now: datetime, until: datetime) -> bool:
    """Takes the document's OCR lease until ``until`` unless another process holds one that has
    not expired. One conditional UPDATE, so two processes (or servers) cannot both win."""
    claim = (
        update(Document)
        .where(
            Document.id == document_id,
            or_(Document.ocr_claimed_until.is_(None), Document.ocr_claimed_until < now),
        )
        .values(ocr_claimed_until=until)
        .execution_options(synchronize_session=False)
    )
    # An UPDATE's result is a CursorResult; the session's signature only promises a Result.
    claimed = cast(CursorResult[Any], session.execute(claim))
    return bool(claimed.rowcount)


def release_online_ocr(session: Session, document_id: int) -> None:
    session.execute(
        update(Document)
        .where(Document.id == document_id)
        .values(ocr_claimed_until=None)
        .execution_options(synchronize_session=False)
    )


def replace_ocr_results(session: Session, document: Document, pages: Sequence[PageText]) -> None:
    """Idempotent per document: a re-run replaces the rows of the engines it ran."""
    engines = {page.engine for page in pages}
    session.execute(
        delete(OcrResult).where(OcrResult.document_id == document.id, OcrResult.engine.in_(engines))
    )
    for number, page in enumerate(pages, start=1):
        session.add(
            OcrResult(
                document_id=document.id,
                page=number,
                engine=page.engine,
                language=page.language,
                text=page.text,
                mean_confidence=page.mean_confidence,
                words=page.words_as_dicts(),
                preprocessing=page.preprocessing,
                seconds=page.seconds,
            )
        )
    document.status = DocumentStatus.OCR_DONE
    document.status_reason = None
    session.flush()
    _index_text(session, document.id)


def document_texts(
    session: Session, document_ids: Sequence[int], prefer: str = "tesseract"
) -> dict[int, str]:
    """Each document's text, its pages in order, from the ``prefer`` engine (the OCR mode)
    where the document has it, else from the engine it was read with."""
    rows = session.execute(
        select(OcrResult.document_id, OcrResult.engine, OcrResult.page, OcrResult.text)
        .where(OcrResult.document_id.in_(document_ids))
        .order_by(OcrResult.document_id, OcrResult.engine, OcrResult.page)
    )
    by_engine: dict[int, dict[str, list[str]]] = {}
    for document_id, engine, _page, text in rows:
        by_engine.setdefault(document_id, {}).setdefault(engine, []).append(text)
    return {
        document_id: "\n\n".join(engines.get(prefer) or next(iter(engines.values())))
        for document_id, engines in by_engine.items()
    }


def labelled_documents(session: Session) -> list[Document]:
    """Documents with a usable label whose OCR is done: what the classifier may learn from."""
    query = (
        select(Document)
        .where(
            Document.label.is_not(None),
            Document.label.not_in(EXCLUDED_LABELS),
            Document.status.in_([DocumentStatus.OCR_DONE, DocumentStatus.PREDICTED]),
        )
        .order_by(Document.id)
    )
    return list(session.scalars(query))


def labelled_documents_in_processing(session: Session) -> int:
    """Labelled documents whose OCR has not finished yet: a snapshot now would miss them."""
    query = select(func.count()).where(
        Document.label.is_not(None),
        Document.label.not_in(EXCLUDED_LABELS),
        Document.status == DocumentStatus.UPLOADED,
    )
    return int(session.scalar(query) or 0)


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
    return prediction


def recent_predicted_classes(session: Session, limit: int) -> list[str]:
    """Classes of the latest batch predictions, newest first."""
    query = (
        select(Prediction.predicted_class)
        .where(Prediction.source == "batch")
        .order_by(Prediction.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def document_pages(session: Session, document_id: int) -> list[OcrResult]:
    """A document's OCR rows, page by page."""
    query = select(OcrResult).where(OcrResult.document_id == document_id)
    return list(session.scalars(query.order_by(OcrResult.page, OcrResult.engine)))


def set_label(session: Session, document: Document, label: str, source: str) -> None:
    document.label = label
    document.label_source = source
    document.labelled_at = datetime.now(UTC)


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


def model_metrics(session: Session, model_name: str, model_version: str) -> dict[str, float]:
    rows = session.execute(
        select(ModelMetric.metric, ModelMetric.value).where(
            ModelMetric.model_name == model_name, ModelMetric.model_version == model_version
        )
    )
    return {metric: value for metric, value in rows}


def record_model_metrics(
    session: Session, model_name: str, model_version: str, split: str, values: dict[str, float]
) -> None:
    for metric, value in values.items():
        session.add(
            ModelMetric(
                model_name=model_name,
                model_version=model_version,
                split=split,
                metric=metric,
                value=value,
            )
        )


def latest_model_metrics(session: Session) -> tuple[str | None, dict[str, float]]:
    """The most recently recorded model version and its metrics."""
    latest = session.scalar(select(func.max(ModelMetric.id)))
    version = session.scalar(select(ModelMetric.model_version).where(ModelMetric.id == latest))
    if version is None:
        return None, {}
    rows = session.execute(
        select(ModelMetric.metric, ModelMetric.value).where(ModelMetric.model_version == version)
    )
    return version, {metric: value for metric, value in rows}


def processed_count(session: Session, document_ids: Sequence[int]) -> int:
    """How many of the documents have left ``uploaded`` (read, predicted or failed)."""
    query = select(func.count()).where(
        Document.id.in_(document_ids), Document.status != DocumentStatus.UPLOADED
    )
    return int(session.scalar(query) or 0)


def status_counts(
    session: Session,
    document_ids: Sequence[int] | None = None,
    upload_date: date | None = None,
) -> dict[str, int]:
    """How many of the given documents, or of one upload day's, are in each status."""
    query = select(Document.status, func.count()).group_by(Document.status)
    if document_ids is not None:
        query = query.where(Document.id.in_(document_ids))
    if upload_date is not None:
        query = query.where(Document.upload_date == upload_date)
    return {status: count for status, count in session.execute(query)}


# The kinds of failure an operator tells apart, by how ``mark_failed``'s reasons begin.
FAILURE_KINDS = (
    ("original file", "original_missing"),
    ("OCR failed: ReadingTimedOut", "ocr_timeout"),
    ("OCR failed", "ocr_error"),
    ("processing run", "run_failed"),
)


def failure_kind(reason: str | None) -> str:
    for start, kind in FAILURE_KINDS:
        if (reason or "").startswith(start):
            return kind
    return "other"


def failures_by_kind(session: Session) -> dict[str, int]:
    query = (
        select(Document.status_reason, func.count())
        .where(Document.status == DocumentStatus.FAILED)
        .group_by(Document.status_reason)
    )
    kinds: dict[str, int] = {}
    for reason, count in session.execute(query):
        kind = failure_kind(reason)
        kinds[kind] = kinds.get(kind, 0) + count
    return kinds


def oldest_waiting_upload(session: Session) -> datetime | None:
    """When the longest-waiting document not yet read was uploaded."""
    oldest = session.scalar(
        select(func.min(Document.uploaded_at)).where(Document.status == DocumentStatus.UPLOADED)
    )
    return as_utc(oldest) if oldest is not None else None


def pages_read_by_engine(session: Session) -> dict[str, int]:
    query = select(OcrResult.engine, func.count()).group_by(OcrResult.engine)
    return {engine: count for engine, count in session.execute(query)}


GATE_SPLIT = "gate"


def last_gate_verdict(session: Session) -> tuple[str, bool] | None:
    """The version the deployment gate judged last, and whether it passed."""
    row = session.execute(
        select(ModelMetric.model_version, ModelMetric.value)
        .where(ModelMetric.split == GATE_SPLIT, ModelMetric.metric == "passed")
        .order_by(ModelMetric.id.desc())
        .limit(1)
    ).first()
    return None if row is None else (row[0], row[1] == 1.0)


def first_upload_day(session: Session) -> date | None:
    return session.scalar(select(func.min(Document.upload_date)))


def documents_with_predictions(session: Session, document_ids: Sequence[int]) -> int:
    query = select(func.count(func.distinct(Prediction.document_id))).where(
        Prediction.document_id.in_(document_ids)
    )
    return int(session.scalar(query) or 0)


def settled_count(session: Session, document_ids: Sequence[int]) -> int:
    """How many of the documents are predicted or failed: nothing more will happen to them."""
    query = select(func.count()).where(
        Document.id.in_(document_ids),
        Document.status.in_([DocumentStatus.PREDICTED, DocumentStatus.FAILED]),
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


def all_predictions(session: Session, where: PredictionFilter) -> list[tuple[Prediction, Document]]:
    rows = session.execute(_filtered_predictions(where).order_by(Prediction.id))
    return [(prediction, document) for prediction, document in rows]


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


def review_page(
    session: Session, where: ReviewFilter, offset: int, limit: int
) -> tuple[int, list[tuple[Document, Prediction | None]]]:
    """Documents with their latest prediction, filtered and ordered for review."""
    newest = (
        select(Prediction.document_id, func.max(Prediction.id).label("prediction_id"))
        .group_by(Prediction.document_id)
        .subquery()
    )
    query = (
        select(Document, Prediction)
        .outerjoin(newest, newest.c.document_id == Document.id)
        .outerjoin(Prediction, Prediction.id == newest.c.prediction_id)
    )
    if where.status:
        query = query.where(Document.status == where.status)
    if where.label:
        query = query.where(Document.label == where.label)
    if where.unlabelled:
        query = query.where(Document.label.is_(None))
    if where.predicted_class:
        query = query.where(Prediction.predicted_class == where.predicted_class)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    orders = {
        "oldest": (Document.id,),
        "newest": (Document.id.desc(),),
        "unsure": (Prediction.confidence.is_(None), Prediction.confidence, Document.id),
    }
    rows = session.execute(query.order_by(*orders[where.order]).offset(offset).limit(limit))
    return int(total), [(document, prediction) for document, prediction in rows]


def prediction_classes(session: Session) -> list[str]:
    query = select(Prediction.predicted_class).distinct()
    return list(session.scalars(query.order_by(Prediction.predicted_class)))


def delete_document(session: Session, document: Document) -> tuple[int, int]:
    """Removes a document with its OCR rows and predictions; returns how many of each."""
    _unindex_text(session, document.id)
    ocr_rows = session.execute(delete(OcrResult).where(OcrResult.document_id == document.id))
    predicted = session.execute(delete(Prediction).where(Prediction.document_id == document.id))
    session.delete(document)
    return (
        cast(CursorResult[Any], ocr_rows).rowcount,
        cast(CursorResult[Any], predicted).rowcount,
    )


# Most matches one search ranks; past it, a query is too broad to page through anyway.
MAX_SEARCH_MATCHES = 5000


def _is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def _unindex_text(session: Session, document_id: int) -> None:
    if _is_sqlite(session):
        session.execute(sql("DELETE FROM ocr_search WHERE document_id = :id"), {"id": document_id})


def _index_text(session: Session, document_id: int) -> None:
    """SQLite's FTS5 table follows the document's OCR rows (PostgreSQL indexes them itself)."""
    if not _is_sqlite(session):
        return
    _unindex_text(session, document_id)
    session.execute(
        sql(
            "INSERT INTO ocr_search (text, document_id) "
            "SELECT text, document_id FROM ocr_results WHERE document_id = :id"
        ),
        {"id": document_id},
    )


def search_text(session: Session, query: str) -> list[tuple[int, str]]:
    """Documents whose OCR text holds every word of ``query``, best match first, each with a
    snippet around the words (marked ``[...]``)."""
    words = [word for word in re.findall(r"\w+", query) if word]
    if not words:
        return []
    if _is_sqlite(session):
        # Each word quoted: FTS5 would read AND, OR, NEAR, * and quotes as its own syntax.
        match = " ".join('"' + word + '"' for word in words)
        rows = session.execute(
            sql(
                "SELECT document_id, snippet(ocr_search, 0, '[', ']', '...', 12) "
                "FROM ocr_search WHERE ocr_search MATCH :match ORDER BY rank LIMIT :limit"
            ),
            {"match": match, "limit": MAX_SEARCH_MATCHES},
        )
    else:
        rows = session.execute(
            sql(
                "SELECT document_id, ts_headline('simple', text, query, "
                "'StartSel=[, StopSel=], MaxWords=14, MinWords=6') "
                "FROM ocr_results, plainto_tsquery('simple', :words) AS query "
                "WHERE to_tsvector('simple', text) @@ query "
                "ORDER BY ts_rank(to_tsvector('simple', text), query) DESC LIMIT :limit"
            ),
            {"words": " ".join(words), "limit": MAX_SEARCH_MATCHES},
        )
    best: dict[int, str] = {}
    for document_id, snippet in rows:
        best.setdefault(int(document_id), str(snippet))
    return list(best.items())


def documents_by_id(session: Session, document_ids: Sequence[int]) -> list[Document]:
    return list(session.scalars(select(Document).where(Document.id.in_(document_ids))))


def originals_past_retention(
    session: Session, uploaded_before: datetime, limit: int
) -> list[Document]:
    """Processed documents uploaded before ``uploaded_before`` whose original is still kept."""
    query = (
        select(Document)
        .where(
            Document.uploaded_at < uploaded_before,
            Document.original_deleted_at.is_(None),
            Document.status != DocumentStatus.UPLOADED,
        )
        .order_by(Document.id)
        .limit(limit)
    )
    return list(session.scalars(query))
