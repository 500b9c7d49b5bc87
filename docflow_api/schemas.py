"""Request and response bodies; field names follow the original system's API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import msgspec
from litestar.datastructures import UploadFile

from docflow_assets.settings import LABEL_MAX_LENGTH


@dataclass
class UploadForm:
    file: UploadFile
    label: str | None = None


class PredictTextRequest(msgspec.Struct):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=1_000_000)]
    return_all_scores: bool = False


class PredictionResponse(msgspec.Struct):
    predicted_class: str
    confidence: float
    is_confident: bool
    model_name: str
    model_version: str
    all_scores: dict[str, float] | None = None
    document_id: int | None = None


class StoredDocument(msgspec.Struct):
    """What every document response says about the stored file and its state."""

    id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    storage_key: str
    pages: int
    status: str
    uploaded_at: datetime
    label: str | None


class UploadResponse(StoredDocument):
    duplicate: bool


class ComponentHealth(msgspec.Struct):
    status: str
    detail: str | None = None


class ModelHealth(msgspec.Struct):
    status: str
    name: str
    version: str | None = None
    loaded_since: datetime | None = None
    detail: str | None = None  # why no model is served


class HealthResponse(msgspec.Struct):
    status: str
    database: ComponentHealth
    object_store: ComponentHealth
    model: ModelHealth


class PredictDocumentRequest(msgspec.Struct):
    ocr_language: Annotated[str, msgspec.Meta(pattern=r"^[a-z_]{3,8}(\+[a-z_]{3,8})*$")] | None = (
        None
    )
    return_all_scores: bool = False


class PredictBatchRequest(msgspec.Struct):
    texts: Annotated[
        list[Annotated[str, msgspec.Meta(min_length=1, max_length=1_000_000)]],
        msgspec.Meta(min_length=1, max_length=1000),
    ]
    return_all_scores: bool = False


class PredictBatchResponse(msgspec.Struct):
    predictions: list[PredictionResponse]


@dataclass
class UploadAndPredictForm:
    file: UploadFile
    label: str | None = None
    ocr_language: str | None = None
    return_all_scores: bool = False


class UploadAndPredictResponse(msgspec.Struct):
    document: UploadResponse
    prediction: PredictionResponse


class LabelRequest(msgspec.Struct):
    label: Annotated[str, msgspec.Meta(min_length=1, max_length=LABEL_MAX_LENGTH)]


class PageText(msgspec.Struct):
    page: int
    engine: str
    language: str
    text: str
    mean_confidence: float


class DocumentDetail(StoredDocument):
    status_reason: str | None
    label_source: str | None
    text: str | None
    ocr_pages: list[PageText]


class LatestPrediction(msgspec.Struct):
    """A document's newest prediction: what a reviewer checks it against."""

    predicted_class: str
    confidence: float
    model_version: str
    source: str
    created_at: datetime


class ListedDocument(StoredDocument):
    latest_prediction: LatestPrediction | None
    # With a search (q): where the words are in the OCR text, marked [like this].
    snippet: str | None = None


class DocumentPage(msgspec.Struct):
    items: list[ListedDocument]
    total: int
    page: int
    page_size: int


class HistoryItem(msgspec.Struct):
    id: int
    predicted_class: str
    confidence: float
    model_name: str
    model_version: str
    all_scores: dict[str, float]
    source: str
    created_at: datetime


class PredictionHistory(msgspec.Struct):
    document_id: int
    predictions: list[HistoryItem]


class ModelResponse(msgspec.Struct):
    name: str
    version: str
    alias: str
    loaded_since: datetime
    run_id: str | None
    classes: list[str]
    metrics: dict[str, float]


class PredictionRecord(msgspec.Struct):
    """One recorded prediction of a stored document, with what a reviewer needs beside it."""

    id: int
    document_id: int
    filename: str
    label: str | None
    predicted_class: str
    confidence: float
    model_name: str
    model_version: str
    source: str
    created_at: datetime


class PredictionPage(msgspec.Struct):
    items: list[PredictionRecord]
    total: int
    page: int
    page_size: int


class DeletionResponse(msgspec.Struct):
    """What went with a deleted document."""

    document_id: int
    ocr_rows: int
    predictions: int
    feature_rows: int
    original: str
