"""Documents: the batches and cursors the pipeline works through, statuses, labels, leases."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, or_, select, update
from sqlalchemy.orm import Session

from docflow_assets.store.models import Document, DocumentStatus, OcrResult, Prediction, as_utc
from docflow_assets.store.repository.text import drop_from_text_index

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


def set_label(session: Session, document: Document, label: str, source: str) -> None:
    document.label = label
    document.label_source = source
    document.labelled_at = datetime.now(UTC)


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


def first_upload_day(session: Session) -> date | None:
    return session.scalar(select(func.min(Document.upload_date)))


def settled_count(session: Session, document_ids: Sequence[int]) -> int:
    """How many of the documents are predicted or failed: nothing more will happen to them."""
    query = select(func.count()).where(
        Document.id.in_(document_ids),
        Document.status.in_([DocumentStatus.PREDICTED, DocumentStatus.FAILED]),
    )
    return int(session.scalar(query) or 0)


def delete_document(session: Session, document: Document) -> tuple[int, int]:
    """Removes a document with its OCR rows and predictions; returns how many of each."""
    drop_from_text_index(session, document.id)
    ocr_rows = session.execute(delete(OcrResult).where(OcrResult.document_id == document.id))
    predicted = session.execute(delete(Prediction).where(Prediction.document_id == document.id))
    session.delete(document)
    return (
        cast(CursorResult[Any], ocr_rows).rowcount,
        cast(CursorResult[Any], predicted).rowcount,
    )


def documents_by_id(session: Session, document_ids: Sequence[int]) -> list[Document]:
    return list(session.scalars(select(Document).where(Document.id.in_(document_ids))))


def with_status(session: Session, document_ids: Sequence[int], status: str) -> list[int]:
    """Those of ``document_ids`` in ``status``, in their order."""
    query = select(Document.id).where(Document.id.in_(document_ids), Document.status == status)
    keep = set(session.scalars(query))
    return [document_id for document_id in document_ids if document_id in keep]


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
