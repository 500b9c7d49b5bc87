"""What the route modules share: state look-ups, response builders, id parameters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from litestar.datastructures import State
from litestar.exceptions import (
    NotFoundException,
    ServiceUnavailableException,
)
from litestar.params import Parameter

from docflow_api import metrics
from docflow_api.model_holder import ServedModel
from docflow_api.schemas import (
    PredictionResponse,
    UploadResponse,
)
from docflow_assets.document_service import DocumentService
from docflow_assets.ml.classifier import ScoredText
from docflow_assets.settings import DocflowSettings
from docflow_assets.store.database import session_scope
from docflow_assets.store.models import Document
from docflow_assets.store.objects import ObjectStore

# Ids are database integers: anything outside 1..2^31-1 is a client error, not a lookup.
DocumentId = Annotated[int, Parameter(ge=1, le=2_147_483_647)]


def settings_of(state: State) -> DocflowSettings:
    return state.settings


def service_of(state: State) -> DocumentService:
    return state.document_service


def store_of(state: State) -> ObjectStore:
    return service_of(state).store


def served_model(state: State) -> ServedModel:
    served = state.model_holder.served
    if served is None:
        raise ServiceUnavailableException(detail=state.model_holder.why_not_served())
    return served


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def prediction_response(
    scored: ScoredText,
    served: ServedModel,
    settings: DocflowSettings,
    all_scores: bool,
    document_id: int | None = None,
) -> PredictionResponse:
    metrics.PREDICTIONS.labels(scored.predicted_class).inc()
    metrics.PREDICTION_CONFIDENCE.observe(scored.confidence)
    return PredictionResponse(
        predicted_class=scored.predicted_class,
        confidence=scored.confidence,
        is_confident=scored.confidence >= settings.confidence_threshold,
        model_name=served.model.name,
        model_version=served.model.version,
        all_scores=scored.scores if all_scores else None,
        document_id=document_id,
    )


def stored_fields(document: Document) -> dict[str, Any]:
    """The ``StoredDocument`` fields of a row, shared by every document response."""
    return {
        "id": document.id,
        "filename": document.filename,
        "content_type": document.content_type,
        "size": document.size_bytes,
        "sha256": document.sha256,
        "storage_key": document.storage_key,
        "pages": document.pages,
        "status": document.status,
        "uploaded_at": as_utc(document.uploaded_at),
        "label": document.label,
    }


def upload_response(document: Document, duplicate: bool) -> UploadResponse:
    return UploadResponse(**stored_fields(document), duplicate=duplicate)


def load_document(state: State, document_id: int) -> Document:
    with session_scope(settings_of(state).resolved_database_url) as session:
        document = session.get(Document, document_id)
        if document is None:
            raise NotFoundException(detail=f"document {document_id} does not exist")
        return document
