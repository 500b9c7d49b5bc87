"""The Litestar application: a thin adapter over Docflow's domain code."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Annotated

import anyio.to_thread
from litestar import Litestar, MediaType, Request, Response, get, post
from litestar.datastructures import State
from litestar.enums import RequestEncodingType
from litestar.exceptions import (
    HTTPException,
    NotFoundException,
    ServiceUnavailableException,
)
from litestar.openapi import OpenAPIConfig
from litestar.params import Body
from sqlalchemy import text

from docflow_api.model_holder import ModelHolder
from docflow_api.schemas import (
    ComponentHealth,
    HealthResponse,
    ModelHealth,
    PredictionResponse,
    PredictTextRequest,
    UploadForm,
    UploadResponse,
)
from docflow_assets.ingest import RejectedDocument, ingest
from docflow_assets.ml.registry import Registry
from docflow_assets.settings import DocflowSettings
from docflow_assets.store.database import ensure_schema, session_scope
from docflow_assets.store.models import Document
from docflow_assets.store.objects import ObjectStore, open_object_store

logger = logging.getLogger("docflow.api")
REJECTION_STATUS = {"too_large": 413, "unsupported_type": 415}
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def _settings(state: State) -> DocflowSettings:
    return state.settings  # type: ignore[no-any-return]


def _store(state: State) -> ObjectStore:
    return state.store  # type: ignore[no-any-return]


def _holder(state: State) -> ModelHolder:
    return state.model_holder  # type: ignore[no-any-return]


@get("/health", sync_to_thread=True)
def health(state: State) -> Response[HealthResponse]:
    settings = _settings(state)
    database = ComponentHealth("up")
    try:
        with session_scope(settings.resolved_database_url) as session:
            session.execute(text("SELECT 1"))
    except Exception as error:
        database = ComponentHealth("down", f"{type(error).__name__}: {error}")
    object_store = ComponentHealth("up")
    try:
        _store(state).ping()
    except Exception as error:
        object_store = ComponentHealth("down", f"{type(error).__name__}: {error}")
    served = _holder(state).served
    model = (
        ModelHealth("down", settings.model_name)
        if served is None
        else ModelHealth("up", served.model.name, served.model.version, served.loaded_since)
    )
    parts = {
        "database": database.status,
        "object_store": object_store.status,
        "model": model.status,
    }
    down = [name for name, status in parts.items() if status != "up"]
    body = HealthResponse(
        "ok" if not down else f"down: {', '.join(down)}", database, object_store, model
    )
    return Response(body, status_code=200 if not down else 503)


@post("/predict/text", status_code=200)
async def predict_text(data: PredictTextRequest, state: State) -> PredictionResponse:
    served = _holder(state).served
    if served is None:
        raise ServiceUnavailableException(detail="no model is deployed yet")
    scored = (await anyio.to_thread.run_sync(served.model.classifier.score_texts, [data.text]))[0]
    threshold = _settings(state).confidence_threshold
    return PredictionResponse(
        predicted_class=scored.predicted_class,
        confidence=scored.confidence,
        is_confident=scored.confidence >= threshold,
        model_name=served.model.name,
        model_version=served.model.version,
        all_scores=scored.scores if data.return_all_scores else None,
    )


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _upload_response(document: Document, duplicate: bool) -> UploadResponse:
    return UploadResponse(
        id=document.id,
        filename=document.filename,
        content_type=document.content_type,
        size=document.size_bytes,
        sha256=document.sha256,
        storage_key=document.storage_key,
        pages=document.pages,
        status=document.status,
        uploaded_at=as_utc(document.uploaded_at),
        label=document.label,
        duplicate=duplicate,
    )


@post("/upload", status_code=201)
async def upload(
    data: Annotated[UploadForm, Body(media_type=RequestEncodingType.MULTI_PART)],
    state: State,
) -> Response[UploadResponse]:
    upload_file = data.file
    try:
        result = await anyio.to_thread.run_sync(
            lambda: ingest(
                upload_file.file,
                upload_file.filename or "unnamed",
                _settings(state),
                _store(state),
                data.label,
                label_source="api",
            )
        )
    except RejectedDocument as error:
        raise HTTPException(
            status_code=REJECTION_STATUS.get(error.code, 422),
            detail=f"{error.code}: {error.message}",
        ) from error
    finally:
        await upload_file.close()
    return Response(
        _upload_response(result.document, result.duplicate),
        status_code=200 if result.duplicate else 201,
    )


@get("/document/{document_id:int}", sync_to_thread=True)
def get_document(document_id: int, state: State) -> UploadResponse:
    with session_scope(_settings(state).resolved_database_url) as session:
        document = session.get(Document, document_id)
        if document is None:
            raise NotFoundException(detail=f"document {document_id} does not exist")
        return _upload_response(document, duplicate=False)


def _internal_error(request: Request, error: Exception) -> Response[dict[str, str]]:
    logger.exception("unhandled error on %s", request.url.path, exc_info=error)
    return Response({"detail": "internal server error"}, status_code=500, media_type=MediaType.JSON)


def create_app(settings: DocflowSettings | None = None) -> Litestar:
    settings = settings or DocflowSettings()
    registry = Registry(
        settings.resolved_mlflow_tracking_uri,
        settings.mlflow_artifact_location,
        settings.model_name,
    )
    holder = ModelHolder(registry, settings.model_alias)

    async def refresh_model() -> None:
        try:
            if await anyio.to_thread.run_sync(holder.refresh):
                served = holder.served
                logger.info(
                    "serving %s version %s", settings.model_name, served and served.model.version
                )
        except Exception:
            logger.exception("could not load the deployed model; keeping the one served")

    async def poll_registry() -> None:
        while True:
            await asyncio.sleep(settings.model_poll_seconds)
            await refresh_model()

    async def startup(app: Litestar) -> None:
        await anyio.to_thread.run_sync(ensure_schema, settings.resolved_database_url)
        await refresh_model()
        app.state.poller = asyncio.create_task(poll_registry())

    async def shutdown(app: Litestar) -> None:
        app.state.poller.cancel()

    return Litestar(
        route_handlers=[health, predict_text, upload, get_document],
        on_startup=[startup],
        on_shutdown=[shutdown],
        state=State(
            {
                "settings": settings,
                "store": open_object_store(
                    settings.resolved_object_store, settings.s3_endpoint_url
                ),
                "model_holder": holder,
            }
        ),
        request_max_body_size=settings.max_upload_bytes + MULTIPART_OVERHEAD_BYTES,
        exception_handlers={500: _internal_error},
        openapi_config=OpenAPIConfig(title="Docflow API", version="0.1.0", path="/schema"),
    )
