"""What several routes do with a document: store an upload, predict a stored document now."""

from __future__ import annotations

import asyncio
import threading
from typing import BinaryIO, cast

import anyio.to_thread
from litestar import Request
from litestar.exceptions import HTTPException

from docflow_api import metrics
from docflow_api.dependencies import ApiContext, prediction_response
from docflow_api.model_holder import ServedModel
from docflow_api.schemas import PredictionResponse, UploadAndPredictForm, UploadForm
from docflow_assets.document_service import DocumentService, OnlineReading
from docflow_assets.document_service.intake import Ingested
from docflow_assets.ingest import RejectedDocument

REJECTION_STATUS = {"too_large": 413, "too_many_pixels": 413, "unsupported_type": 415}


async def ingest_upload(
    service: DocumentService, form: UploadForm | UploadAndPredictForm, label_source: str = "api"
) -> Ingested:
    """Stores an uploaded file (the same ``ingest`` as the CLI's); a rejected file is an
    ``HTTPException`` naming why, with nothing stored."""
    try:
        result = await anyio.to_thread.run_sync(
            lambda: service.ingest(
                cast(BinaryIO, form.file.file),
                form.file.filename or "unnamed",
                form.label or None,
                label_source=label_source,
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


async def _watch_for_disconnect(request: Request, gone: threading.Event) -> None:
    """Sets ``gone`` when the client hangs up: with the body read, the next ASGI message is
    the disconnect (servers send it once the client has gone or the response is done)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
    gone.set()


async def predict_stored(
    context: ApiContext,
    served: ServedModel,
    request: Request,
    document_id: int,
    language: str | None,
    all_scores: bool,
    original: bytes | None = None,
) -> PredictionResponse:
    """A stored document's prediction now, OCR first when it has no text: bounded by the
    online OCR slots and budget, and stopped when the client hangs up."""
    started = asyncio.get_running_loop().time()
    gone = threading.Event()
    watcher = asyncio.create_task(_watch_for_disconnect(request, gone))
    online = OnlineReading(language, context.online_ocr_slots, gone, original)
    try:
        result = await anyio.to_thread.run_sync(
            lambda: context.service.predict(
                served.model.classifier,
                served.model.name,
                served.model.version,
                document_id,
                online,
            )
        )
    finally:
        watcher.cancel()
    if result.ran_ocr:
        metrics.OCR_SECONDS.observe(asyncio.get_running_loop().time() - started)
    return prediction_response(result.scored, served, context.settings, all_scores, document_id)
