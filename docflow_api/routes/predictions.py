"""Prediction routes: text, batch and stored documents."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import anyio.to_thread
from litestar import Request, post
from litestar.datastructures import State
from litestar.exceptions import (
    HTTPException,
    NotFoundException,
)

from docflow_api import metrics
from docflow_api.batch_scorer import BatchScorer
from docflow_api.dependencies import (
    DocumentId,
    prediction_response,
    served_model,
    service_of,
    settings_of,
)
from docflow_api.schemas import (
    PredictBatchRequest,
    PredictBatchResponse,
    PredictDocumentRequest,
    PredictionResponse,
    PredictTextRequest,
)
from docflow_assets.document_service import DocumentNotFound
from docflow_assets.ocr.engines import UnsupportedLanguage
from docflow_assets.store.objects import ObjectNotFound

T = TypeVar("T")
R = TypeVar("R")


async def _scored_off_loop(state: State, score: Callable[[T], R], texts: T) -> R:
    """Model inference on the API's scoring threads: a plain executor hand-off costs a third of
    anyio's worker-thread call (capacity limiter, cancel scope), which a 0.1 ms scoring feels."""
    executor: ThreadPoolExecutor = state.scoring_executor
    return await asyncio.get_running_loop().run_in_executor(executor, score, texts)


@post("/predict/text", status_code=200)
async def predict_text(data: PredictTextRequest, state: State) -> PredictionResponse:
    served = served_model(state)
    scored = await _scored_off_loop(state, served.model.classifier.score_text, data.text)
    return prediction_response(scored, served, settings_of(state), data.return_all_scores)


@post("/predict/batch", status_code=200)
async def predict_batch(data: PredictBatchRequest, state: State) -> PredictBatchResponse:
    served = served_model(state)
    settings = settings_of(state)
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
            [prediction_response(item, served, settings, data.return_all_scores) for item in scored]
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


async def predict_stored(
    state: State, request: Request, document_id: int, language: str | None, all_scores: bool
) -> PredictionResponse:
    served = served_model(state)
    settings = settings_of(state)
    started = asyncio.get_running_loop().time()
    # OCR stops at the next page when the client goes away: nobody would read the answer.
    gone = threading.Event()
    watcher = asyncio.create_task(_watch_for_disconnect(request, gone))
    try:
        result = await anyio.to_thread.run_sync(
            lambda: service_of(state).predict(
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
    return prediction_response(result.scored, served, settings, all_scores, document_id)


@post("/predict/document/{document_id:int}", status_code=200)
async def predict_stored_document(
    document_id: DocumentId,
    state: State,
    request: Request,
    data: PredictDocumentRequest | None = None,
) -> PredictionResponse:
    options = data or PredictDocumentRequest()
    return await predict_stored(
        state, request, document_id, options.ocr_language, options.return_all_scores
    )
