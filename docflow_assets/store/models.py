"""Application tables. Changes here need an Alembic revision in ``migrations/versions``."""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from docflow_assets.settings import LABEL_MAX_LENGTH


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class DocumentStatus(enum.StrEnum):
    UPLOADED = "uploaded"
    RASTERISED = "rasterised"
    OCR_DONE = "ocr_done"
    PREDICTED = "predicted"
    FAILED = "failed"


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (
        Index("ix_documents_latest_confidence", "latest_confidence", "id"),
        Index("ix_documents_latest_predicted_class", "latest_predicted_class", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    filename: Mapped[str] = mapped_column(String(512))
    content_type: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    storage_key: Mapped[str] = mapped_column(String(256))
    pages: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=DocumentStatus.UPLOADED, index=True)
    status_reason: Mapped[str | None] = mapped_column(Text, default=None)
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    upload_date: Mapped[date] = mapped_column(Date, index=True)
    label: Mapped[str | None] = mapped_column(String(LABEL_MAX_LENGTH), default=None, index=True)
    label_source: Mapped[str | None] = mapped_column(String(32), default=None)
    labelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # While set and in the future, one API process is reading this document online; others wait
    # for its text instead of reading the same pages again.
    ocr_claimed_until: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=None
    )
    # Set when the retention period removed the original file (text and predictions stay).
    original_deleted_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=None
    )

    # The newest prediction's, kept here so that the review list orders and filters by them
    # through an index instead of grouping every prediction of the home (add_prediction).
    latest_confidence: Mapped[float | None] = mapped_column(Float, default=None)
    latest_predicted_class: Mapped[str | None] = mapped_column(
        String(LABEL_MAX_LENGTH), default=None
    )

    ocr_results: Mapped[list[OcrResult]] = relationship(
        back_populates="document", cascade="all, delete-orphan", order_by="OcrResult.page"
    )


class OcrResult(Base):
    __tablename__ = "ocr_results"
    __table_args__ = (UniqueConstraint("document_id", "page", "engine"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    page: Mapped[int] = mapped_column(Integer)
    engine: Mapped[str] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    mean_confidence: Mapped[float] = mapped_column(Float)
    words: Mapped[list[Any]] = mapped_column(JSON)
    preprocessing: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    seconds: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    document: Mapped[Document] = relationship(back_populates="ocr_results")


class Prediction(Base):
    __tablename__ = "predictions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int | None] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(32))
    predicted_class: Mapped[str] = mapped_column(String(LABEL_MAX_LENGTH), index=True)
    confidence: Mapped[float] = mapped_column(Float)
    all_scores: Mapped[dict[str, Any]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(16), default="batch")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ModelMetric(Base):
    __tablename__ = "model_metrics"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(32))
    split: Mapped[str] = mapped_column(String(16))
    metric: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
