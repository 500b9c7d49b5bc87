"""Request and response bodies; field names follow the original system's API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import msgspec
from litestar.datastructures import UploadFile


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


class UploadResponse(msgspec.Struct):
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
    duplicate: bool


class ComponentHealth(msgspec.Struct):
    status: str
    detail: str | None = None


class ModelHealth(msgspec.Struct):
    status: str
    name: str
    version: str | None = None
    loaded_since: datetime | None = None


class HealthResponse(msgspec.Struct):
    status: str
    database: ComponentHealth
    object_store: ComponentHealth
    model: ModelHealth
