"""What the controllers are given (``Provide``): the API's context built once per app, the
settings, the document service and the served model; and the response builders they share."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated, Any

from litestar.di import Provide
from litestar.exceptions import ServiceUnavailableException
from litestar.params import Parameter
from prometheus_client import CollectorRegistry

from docflow_api import metrics
from docflow_api.batch_scorer import BatchScorer
from docflow_api.model_holder import ModelHolder, ServedModel
from docflow_api.schemas import PredictionResponse, UploadResponse
from docflow_assets.document_service import DocumentService
from docflow_assets.document_service.records_of import DocumentRecord
from docflow_assets.ml.classifier import ScoredText
from docflow_assets.settings import DocflowSettings
from docflow_assets.store.models import as_utc

# Ids are database integers: anything outside 1..2^31-1 is a client error, not a lookup.
DocumentId = Annotated[int, Parameter(ge=1, le=2_147_483_647)]
# Rows on one page of a list (the review page always shows this many).
PAGE_SIZE = 50
PageSize = Annotated[int, Parameter(ge=1, le=500, description="Rows per page.")]


@dataclass
class ApiContext:
    """Everything a request may need, built once when the app is made."""

    settings: DocflowSettings
    service: DocumentService
    model_holder: ModelHolder
    refresh_model: Callable[[], Awaitable[None]]
    # Text scoring has threads of its own: OCR and batches never queue in front of it.
    scoring_executor: ThreadPoolExecutor
    batch_executor: ThreadPoolExecutor
    batch_scorer: BatchScorer
    online_ocr_slots: threading.BoundedSemaphore
    # The pipeline's gauges (``metrics.PipelineCollector``), scraped beside the API's own.
    pipeline_metrics: CollectorRegistry

    def served(self) -> ServedModel:
        """The model serving now; 503 with the reason while there is none."""
        served = self.model_holder.served
        if served is None:
            raise ServiceUnavailableException(detail=self.model_holder.why_not_served())
        return served


def provide(context: ApiContext) -> dict[str, Provide]:
    """The app's dependencies, by the parameter name a handler asks for them with."""
    return {
        "context": Provide(lambda: context, use_cache=True, sync_to_thread=False),
        "settings": Provide(lambda: context.settings, use_cache=True, sync_to_thread=False),
        "service": Provide(lambda: context.service, use_cache=True, sync_to_thread=False),
        # Not cached: the served model changes when the registry alias moves.
        "served": Provide(context.served, sync_to_thread=False),
    }


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


def stored_fields(document: DocumentRecord) -> dict[str, Any]:
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


def upload_response(document: DocumentRecord, duplicate: bool) -> UploadResponse:
    return UploadResponse(**stored_fields(document), duplicate=duplicate)
