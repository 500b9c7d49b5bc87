"""What the service hands its callers about stored documents, pages and predictions: plain
frozen records read off the rows, so no adapter holds a database row or its session's rules."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

from docflow_assets.store.models import Document, OcrResult, Prediction


def _columns(record: type, row: object) -> dict[str, Any]:
    """The row's values of the record's fields (each field is a column of the same name)."""
    return {field.name: getattr(row, field.name) for field in fields(record)}


@dataclass(frozen=True)
class DocumentRecord:
    id: int
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    storage_key: str
    pages: int
    status: str
    status_reason: str | None
    uploaded_at: datetime
    upload_date: date
    label: str | None
    label_source: str | None
    labelled_at: datetime | None
    original_deleted_at: datetime | None

    @classmethod
    def of(cls, row: Document) -> DocumentRecord:
        return cls(**_columns(cls, row))


@dataclass(frozen=True)
class PageRecord:
    """One page's stored reading by one engine."""

    page: int
    engine: str
    language: str
    text: str
    mean_confidence: float
    words: list[dict[str, Any]]
    preprocessing: dict[str, Any]
    seconds: float

    @classmethod
    def of(cls, row: OcrResult) -> PageRecord:
        return cls(**_columns(cls, row))


@dataclass(frozen=True)
class PredictionRecord:
    id: int
    document_id: int | None
    model_name: str
    model_version: str
    predicted_class: str
    confidence: float
    all_scores: dict[str, float]
    source: str
    created_at: datetime

    @classmethod
    def of(cls, row: Prediction) -> PredictionRecord:
        return cls(**_columns(cls, row))

    @classmethod
    def of_latest(cls, row: Prediction | None) -> PredictionRecord | None:
        return None if row is None else cls.of(row)
