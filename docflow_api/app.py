"""The Litestar application: a thin adapter over Docflow's domain code."""

from __future__ import annotations

import asyncio
import gc
import hmac
import logging
import string
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Annotated, Any, BinaryIO, TypeVar, cast
from urllib.parse import quote

import anyio.to_thread
from litestar import Litestar, MediaType, Request, Response, get, post, put
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.enums import RequestEncodingType
from litestar.exceptions import (
    ClientException,
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    ServiceUnavailableException,
    ValidationException,
)
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.params import Body, Parameter
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError
from threadpoolctl import threadpool_limits

from docflow_api import metrics
from docflow_api.batch_scorer import BatchScorer
from docflow_api.model_holder import ModelHolder, ServedModel
from docflow_api.schemas import (
    ComponentHealth,
    DocumentDetail,
    DocumentPage,
    HealthResponse,
    HistoryItem,
    LabelRequest,
    ModelHealth,
    ModelResponse,
    PageText,
    PredictBatchRequest,
    PredictBatchResponse,
    PredictDocumentRequest,
    PredictionHistory,
    PredictionResponse,
    PredictTextRequest,
    UploadAndPredictForm,
    UploadAndPredictResponse,
    UploadForm,
    UploadResponse,
)
from docflow_assets.document_service import (
    DocumentNotFound,
    DocumentService,
    LeftToPipeline,
    OcrBusy,
)
from docflow_assets.ingest import IngestResult, RejectedDocument, ingest, normalise_label
from docflow_assets.ml.classifier import ScoredText
from docflow_assets.ml.registry import Registry
from docflow_assets.ocr.engines import UnsupportedLanguage, check_languages
from docflow_assets.settings import DocflowSettings
from docflow_assets.store.database import ensure_schema, session_scope
from docflow_assets.store.models import (
    Document,
    DocumentStatus,
    ModelMetric,
    OcrResult,
    Prediction,
)
from docflow_assets.store.objects import (
    ObjectNotFound,
    ObjectStore,
    StoreUnavailable,
    open_object_store,
)

logger = logging.getLogger("docflow.api")
REJECTION_STATUS = {"too_large": 413, "too_many_pixels": 413, "unsupported_type": 415}
MULTIPART_OVERHEAD_BYTES = 64 * 1024
BATCH_SLICE = 64
CLIENT_GONE_DETAIL = "client disconnected prematurely"
OPEN_PATHS = {"/health", "/metrics"}
# Ids are database integers: anything outside 1..2^31-1 is a client error, not a lookup.
DocumentId = Annotated[int, Parameter(ge=1, le=2_147_483_647)]
T = TypeVar("T")
R = TypeVar("R")


def _settings(state: State) -> DocflowSettings:
    return state.settings


def _service(state: State) -> DocumentService:
    return state.document_service


def _store(state: State) -> ObjectStore:
    return _service(state).store


def _served(state: State) -> ServedModel:
    served = state.model_holder.served
    if served is None:
        raise ServiceUnavailableException(detail=state.model_holder.why_not_served())
    return served


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _prediction(
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


def _stored_fields(document: Document) -> dict[str, Any]:
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


def _upload_response(document: Document, duplicate: bool) -> UploadResponse:
    return UploadResponse(**_stored_fields(document), duplicate=duplicate)


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
    served = state.model_holder.served
    model = (
        ModelHealth("down", settings.model_name, detail=state.model_holder.why_not_served())
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


async def _scored_off_loop(state: State, score: Callable[[T], R], texts: T) -> R:
    """Model inference on the API's scoring threads: a plain executor hand-off costs a third of
    anyio's worker-thread call (capacity limiter, cancel scope), which a 0.1 ms scoring feels."""
    executor: ThreadPoolExecutor = state.scoring_executor
    return await asyncio.get_running_loop().run_in_executor(executor, score, texts)


@post("/predict/text", status_code=200)
async def predict_text(data: PredictTextRequest, state: State) -> PredictionResponse:
    served = _served(state)
    scored = await _scored_off_loop(state, served.model.classifier.score_text, data.text)
    return _prediction(scored, served, _settings(state), data.return_all_scores)


@post("/predict/batch", status_code=200)
async def predict_batch(data: PredictBatchRequest, state: State) -> PredictBatchResponse:
    served = _served(state)
    settings = _settings(state)
    characters = sum(len(text) for text in data.texts)
    if characters > settings.api_max_batch_characters:
        raise HTTPException(
            status_code=413,
            detail=f"the batch holds {characters} characters, more than the limit of "
            f"{settings.api_max_batch_characters} (DOCFLOW_API_MAX_BATCH_CHARACTERS); "
            "send it in smaller batches",
        )
    scorer: BatchScorer = state.batch_scorer

    def score_batch(texts: list[str]) -> PredictBatchResponse:
        scored = scorer.score(served.model.classifier, served.model.version, texts)
        return PredictBatchResponse(
            [_prediction(item, served, settings, data.return_all_scores) for item in scored]
        )

    # Batches wait for their process on their own thread: the text scorers stay free.
    batch_executor: ThreadPoolExecutor = state.batch_executor
    return await asyncio.get_running_loop().run_in_executor(batch_executor, score_batch, data.texts)


async def _watch_for_disconnect(request: Request, gone: threading.Event) -> None:
    """Sets ``gone`` when the client hangs up: with the body read, the next ASGI message is
    the disconnect (servers send it once the client has gone or the response is done)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
    gone.set()


async def _predict_stored(
    state: State, request: Request, document_id: int, language: str | None, all_scores: bool
) -> PredictionResponse:
    served = _served(state)
    settings = _settings(state)
    started = asyncio.get_running_loop().time()
    # OCR stops at the next page when the client goes away: nobody would read the answer.
    gone = threading.Event()
    watcher = asyncio.create_task(_watch_for_disconnect(request, gone))
    try:
        result = await anyio.to_thread.run_sync(
            lambda: _service(state).predict(
                served.model.classifier,
                served.model.name,
                served.model.version,
                document_id,
                language,
                state.online_ocr_slots,
                gone,
            )
        )
    except DocumentNotFound as error:
        raise NotFoundException(detail=str(error)) from error
    except UnsupportedLanguage as error:
        raise HTTPException(status_code=422, detail=str(error)) from error
    except ObjectNotFound as error:
        raise HTTPException(
            status_code=409, detail=f"original file of document {document_id} is missing"
        ) from error
    finally:
        watcher.cancel()
    if result.ran_ocr:
        metrics.OCR_SECONDS.observe(asyncio.get_running_loop().time() - started)
    return _prediction(result.scored, served, settings, all_scores, document_id)


@post("/predict/document/{document_id:int}", status_code=200)
async def predict_stored_document(
    document_id: DocumentId,
    state: State,
    request: Request,
    data: PredictDocumentRequest | None = None,
) -> PredictionResponse:
    options = data or PredictDocumentRequest()
    return await _predict_stored(
        state, request, document_id, options.ocr_language, options.return_all_scores
    )


async def _ingest_upload(state: State, form: UploadForm | UploadAndPredictForm) -> IngestResult:
    try:
        result = await anyio.to_thread.run_sync(
            lambda: ingest(
                cast(BinaryIO, form.file.file),
                form.file.filename or "unnamed",
                _settings(state),
                _store(state),
                form.label,
                label_source="api",
            )
        )
    except RejectedDocument as error:
        metrics.UPLOADS.labels("rejected").inc()
        raise HTTPException(
            status_code=REJECTION_STATUS.get(error.code, 422),
            detail=f"{error.code}: {error.message}",
        ) from error
    finally:
        await form.file.close()
    metrics.UPLOADS.labels("duplicate" if result.duplicate else "stored").inc()
    return result


@post("/upload", status_code=201)
async def upload(
    data: Annotated[UploadForm, Body(media_type=RequestEncodingType.MULTI_PART)], state: State
) -> Response[UploadResponse]:
    result = await _ingest_upload(state, data)
    return Response(
        _upload_response(result.document, result.duplicate),
        status_code=200 if result.duplicate else 201,
    )


@post("/upload-and-predict", status_code=200)
async def upload_and_predict(
    data: Annotated[UploadAndPredictForm, Body(media_type=RequestEncodingType.MULTI_PART)],
    state: State,
    request: Request,
) -> UploadAndPredictResponse:
    _served(state)  # refuse before storing anything when no model can answer
    language = data.ocr_language.strip() if data.ocr_language else None
    if language:  # an empty field means the default, as an absent one does
        try:
            check_languages(language)
        except UnsupportedLanguage as error:
            raise HTTPException(status_code=422, detail=str(error)) from error
    result = await _ingest_upload(state, data)
    prediction = await _predict_stored(
        state, request, result.document.id, language or None, data.return_all_scores
    )
    document = await anyio.to_thread.run_sync(_load_document, state, result.document.id)
    return UploadAndPredictResponse(_upload_response(document, result.duplicate), prediction)


def _load_document(state: State, document_id: int) -> Document:
    with session_scope(_settings(state).resolved_database_url) as session:
        document = session.get(Document, document_id)
        if document is None:
            raise NotFoundException(detail=f"document {document_id} does not exist")
        return document


@get("/document/{document_id:int}", sync_to_thread=True)
def get_document(document_id: DocumentId, state: State) -> DocumentDetail:
    with session_scope(_settings(state).resolved_database_url) as session:
        document = session.get(Document, document_id)
        if document is None:
            raise NotFoundException(detail=f"document {document_id} does not exist")
        rows = session.scalars(
            select(OcrResult).where(OcrResult.document_id == document_id).order_by(OcrResult.page)
        ).all()
        pages = [
            PageText(row.page, row.engine, row.language, row.text, row.mean_confidence)
            for row in rows
        ]
        return DocumentDetail(
            **_stored_fields(document),
            status_reason=document.status_reason,
            label_source=document.label_source,
            text="\n\n".join(page.text for page in pages) if pages else None,
            ocr_pages=pages,
        )


@get(
    "/document/{document_id:int}/file",
    sync_to_thread=True,
    # The original as uploaded: PDF or one of the image types.
    media_type="*/*",
)
def get_document_file(document_id: DocumentId, state: State) -> Response[bytes]:
    document = _load_document(state, document_id)
    try:
        data = _store(state).get_bytes(document.storage_key)
    except ObjectNotFound as error:
        raise HTTPException(
            status_code=409, detail=f"original file of document {document_id} is missing"
        ) from error
    return Response(
        data,
        media_type=document.content_type,
        headers={"Content-Disposition": content_disposition(document.filename)},
    )


@put("/document/{document_id:int}/label", sync_to_thread=True)
def set_label(document_id: DocumentId, data: LabelRequest, state: State) -> UploadResponse:
    try:
        label = normalise_label(data.label)
    except RejectedDocument as error:
        raise ValidationException(detail=error.message) from error
    if label is None:
        raise ValidationException(detail="label must not be blank")
    with session_scope(_settings(state).resolved_database_url) as session:
        document = session.get(Document, document_id)
        if document is None:
            raise NotFoundException(detail=f"document {document_id} does not exist")
        document.label = label
        document.label_source = "api"
        document.labelled_at = datetime.now(UTC)
        return _upload_response(document, duplicate=False)


@get("/documents", sync_to_thread=True)
def list_documents(
    state: State,
    page: Annotated[int, Parameter(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Parameter(ge=1, le=500)] = 50,
    status: Annotated[str | None, Parameter(max_length=16)] = None,
    label: Annotated[str | None, Parameter(max_length=64)] = None,
) -> DocumentPage:
    query = select(Document)
    if status:
        known = [value.value for value in DocumentStatus]
        if status not in known:
            raise ValidationException(
                detail=f"unknown status {status!r}; known: {', '.join(known)}"
            )
        query = query.where(Document.status == status)
    if label:
        query = query.where(Document.label == label)
    with session_scope(_settings(state).resolved_database_url) as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        documents = session.scalars(
            query.order_by(Document.id).offset((page - 1) * page_size).limit(page_size)
        ).all()
        return DocumentPage([_upload_response(d, False) for d in documents], total, page, page_size)


@get("/prediction/history/{document_id:int}", sync_to_thread=True)
def prediction_history(document_id: DocumentId, state: State) -> PredictionHistory:
    _load_document(state, document_id)
    with session_scope(_settings(state).resolved_database_url) as session:
        rows = session.scalars(
            select(Prediction).where(Prediction.document_id == document_id).order_by(Prediction.id)
        ).all()
        return PredictionHistory(
            document_id,
            [
                HistoryItem(
                    r.id,
                    r.predicted_class,
                    r.confidence,
                    r.model_name,
                    r.model_version,
                    r.all_scores,
                    r.source,
                    as_utc(r.created_at),
                )
                for r in rows
            ],
        )


@get("/model", sync_to_thread=True)
def model_info(state: State) -> ModelResponse:
    served = _served(state)
    settings = _settings(state)
    with session_scope(settings.resolved_database_url) as session:
        rows = session.execute(
            select(ModelMetric.metric, ModelMetric.value).where(
                ModelMetric.model_name == served.model.name,
                ModelMetric.model_version == served.model.version,
            )
        ).all()
    return ModelResponse(
        name=served.model.name,
        version=served.model.version,
        alias=settings.model_alias,
        loaded_since=served.loaded_since,
        run_id=served.model.run_id,
        classes=served.model.classifier.classes,
        metrics={name: value for name, value in rows},
    )


@post("/model/reload", status_code=200)
async def reload_model(state: State) -> ModelHealth:
    """Pick up a newly deployed version now instead of at the next poll."""
    await state.refresh_model()
    served = _served(state)
    return ModelHealth("up", served.model.name, served.model.version, served.loaded_since)


def api_key_guard(keys: frozenset[str]) -> Any:
    def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        if connection.url.path in OPEN_PATHS:
            return
        # Headers arrive as Latin-1 text; compared as bytes, a key with other characters is
        # simply wrong (compare_digest refuses non-ASCII text outright).
        given = connection.headers.get("x-api-key", "").encode("latin-1", "replace")
        if not any(hmac.compare_digest(given, key.encode()) for key in keys):
            raise NotAuthorizedException(detail="a valid X-API-Key header is required")

    return guard


SAFE_FALLBACK_CHARACTERS = frozenset(string.ascii_letters + string.digits + " ._-()[]+,")


def content_disposition(filename: str) -> str:
    """RFC 6266: a plain-ASCII ``filename`` for old clients (letters, digits and a few marks;
    anything else becomes ``_``) and the exact name, percent-encoded UTF-8, in ``filename*``
    (RFC 5987). Nothing of the stored name reaches the header unescaped."""
    fallback = "".join(c if c in SAFE_FALLBACK_CHARACTERS else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _undecodable(request: Request, error: Exception) -> Response[dict[str, str]]:
    """A body or field that is not UTF-8, or JSON nested past any sense: the client's fault."""
    logger.info("undecodable request to %s: %s", request.url.path, type(error).__name__)
    if isinstance(error, RecursionError):
        detail = "the request body is nested too deeply"
    elif request.content_type[0] == "multipart/form-data":
        # Litestar reads a part without a plain ``filename=`` (none, or only RFC 5987's
        # ``filename*=``) as a text field.
        detail = (
            "a form field is not valid UTF-8 text: send the document as a file part with a "
            'plain filename="..." parameter, and label and ocr_language as UTF-8 text'
        )
    else:
        detail = "the request body is not valid UTF-8"
    return Response({"detail": detail}, status_code=400, media_type=MediaType.JSON)


def _bad_request(request: Request, error: Exception) -> Response[dict[str, Any]]:
    """Litestar's client errors, with its one misleading multipart message made plain."""
    assert isinstance(error, HTTPException)
    detail = error.detail
    if detail == "Request Entity Too Large" and error.status_code == 400:
        detail = (
            "a multipart part's headers are longer than 4 KiB (a filename that long?); "
            "filenames are kept to 255 characters anyway"
        )
    elif detail == "Invalid multipart/form-data":
        detail = (
            "the body is not valid multipart/form-data (RFC 7578): check the boundary, the "
            "part headers (UTF-8) and the closing boundary"
        )
    body: dict[str, Any] = {"status_code": error.status_code, "detail": detail}
    if error.extra:
        body["extra"] = error.extra
    return Response(body, status_code=error.status_code, media_type=MediaType.JSON)


def _left_to_pipeline(request: Request, error: Exception) -> Response[dict[str, Any]]:
    """Accepted, not done: the document is stored and the pipeline will read it."""
    assert isinstance(error, LeftToPipeline)
    logger.info("%s", error)
    return Response(
        {"detail": str(error), "document_id": error.document_id},
        status_code=202,
        media_type=MediaType.JSON,
    )


def _retry_later(detail: str) -> Response[dict[str, str]]:
    """503 with the seconds after which the same request is worth sending again."""
    return Response(
        {"detail": detail}, status_code=503, media_type=MediaType.JSON, headers={"Retry-After": "5"}
    )


def _ocr_busy(request: Request, error: Exception) -> Response[dict[str, str]]:
    return _retry_later(str(error))


def _internal_error(request: Request, error: Exception) -> Response[dict[str, str]]:
    if isinstance(error, HTTPException) and error.detail == CLIENT_GONE_DETAIL:
        # Litestar's word for a client that hung up mid-body: nobody is left to answer.
        logger.info("client left %s before sending the whole body", request.url.path)
        return Response({"detail": "incomplete request body"}, status_code=400)
    logger.exception("unhandled error on %s", request.url.path, exc_info=error)
    return Response({"detail": "internal server error"}, status_code=500, media_type=MediaType.JSON)


def _unavailable(request: Request, error: Exception) -> Response[dict[str, str]]:
    """A store that is down is the server's problem, not the client's: 503, try again."""
    logger.warning("%s on %s: %s", type(error).__name__, request.url.path, error)
    what = "object store" if isinstance(error, StoreUnavailable) else "database"
    return _retry_later(f"the {what} is unavailable; nothing was changed, try again shortly")


def settle_heap() -> None:
    """Take what is loaded now (libraries, the served model) out of the garbage collector's
    sight. Otherwise every full collection walks those millions of long-lived objects and
    stalls all requests: pauses of up to 0.28 s under load, the p99 latency at concurrency 32.
    Run on each model swap, so the replaced model's cycles are collected once first."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class MetricsController(PrometheusController):
    path = "/metrics"
    # Prometheus's text format for scrapers, not an API operation.
    include_in_schema = False


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
                assert served is not None
                metrics.MODEL_INFO.clear()
                metrics.MODEL_INFO.labels(served.model.name, served.model.version).set(1)
                logger.info("serving %s version %s", served.model.name, served.model.version)
                settle_heap()
        except Exception:
            logger.exception("could not load the deployed model; keeping the one served")

    async def poll_registry() -> None:
        while True:
            await asyncio.sleep(settings.model_poll_seconds)
            await refresh_model()

    async def startup(app: Litestar) -> None:
        # A request's model products are tiny: BLAS threads only wake up to fight the server's
        # own threads for the cores (the hidden-layer product of one text: 21 us with them,
        # 12 us without, on 2 cores). Concurrency comes from requests and uvicorn workers.
        threadpool_limits(limits=1, user_api="blas")
        app.state.scoring_executor = ThreadPoolExecutor(
            settings.api_scoring_threads, thread_name_prefix="docflow-scoring"
        )
        app.state.batch_executor = ThreadPoolExecutor(1, thread_name_prefix="docflow-batch")
        app.state.batch_scorer = BatchScorer(BATCH_SLICE)
        await anyio.to_thread.run_sync(ensure_schema, settings.resolved_database_url)
        await refresh_model()
        app.state.poller = asyncio.create_task(poll_registry())

    async def shutdown(app: Litestar) -> None:
        app.state.poller.cancel()
        app.state.scoring_executor.shutdown(wait=False, cancel_futures=True)
        app.state.batch_executor.shutdown(wait=False, cancel_futures=True)
        app.state.batch_scorer.close()

    keys = frozenset(key.strip() for key in (settings.api_keys or "").split(",") if key.strip())
    prometheus = PrometheusConfig(app_name="docflow", group_path=True, exclude=["/metrics"])
    return Litestar(
        route_handlers=[
            health,
            predict_text,
            predict_batch,
            predict_stored_document,
            upload,
            upload_and_predict,
            get_document,
            get_document_file,
            set_label,
            list_documents,
            prediction_history,
            model_info,
            reload_model,
            MetricsController,
        ],
        on_startup=[startup],
        on_shutdown=[shutdown],
        guards=[api_key_guard(keys)] if keys else [],
        middleware=[prometheus.middleware],
        state=State(
            {
                "settings": settings,
                "document_service": DocumentService(
                    settings,
                    open_object_store(settings.resolved_object_store, settings.s3_endpoint_url),
                    registry,
                ),
                "model_holder": holder,
                "refresh_model": refresh_model,
                "online_ocr_slots": threading.BoundedSemaphore(settings.api_online_ocr_slots),
            }
        ),
        request_max_body_size=settings.max_upload_bytes + MULTIPART_OVERHEAD_BYTES,
        exception_handlers={
            500: _internal_error,
            UnicodeDecodeError: _undecodable,
            ClientException: _bad_request,
            LeftToPipeline: _left_to_pipeline,
            OcrBusy: _ocr_busy,
            RecursionError: _undecodable,
            StoreUnavailable: _unavailable,
            OperationalError: _unavailable,
        },
        openapi_config=OpenAPIConfig(title="Docflow API", version="0.1.0", path="/schema"),
    )
