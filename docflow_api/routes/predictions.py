"""Prediction routes: text, batch and stored documents."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from litestar import Controller, Request, post
from litestar.exceptions import HTTPException

from docflow_api.dependencies import ApiContext, DocumentId, prediction_response
from docflow_api.document_calls import predict_stored
from docflow_api.model_holder import ServedModel
from docflow_api.schemas import (
    PredictBatchRequest,
    PredictBatchResponse,
    PredictDocumentRequest,
    PredictionResponse,
    PredictTextRequest,
)

T = TypeVar("T")
R = TypeVar("R")


async def _scored_off_loop(context: ApiContext, score: Callable[[T], R], texts: T) -> R:
    """Model inference on the API's scoring threads: a plain executor hand-off costs a third of
    anyio's worker-thread call (capacity limiter, cancel scope), which a 0.1 ms scoring feels."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(context.scoring_executor, score, texts)


class PredictionController(Controller):
    tags = ["predictions"]

    @post("/predict/text", status_code=200)
    async def predict_text(
        self, data: PredictTextRequest, context: ApiContext
    ) -> PredictionResponse:
        # The hottest route asks for the served model itself: a dependency resolved per
        # request (it cannot be cached: the model swaps) is a measurable share of 0.4 ms.
        served = context.served()
        scored = await _scored_off_loop(context, served.model.classifier.score_text, data.text)
        return prediction_response(scored, served, context.settings, data.return_all_scores)

    @post("/predict/batch", status_code=200)
    async def predict_batch(
        self, data: PredictBatchRequest, context: ApiContext, served: ServedModel
    ) -> PredictBatchResponse:
        settings = context.settings
        characters = sum(len(text) for text in data.texts)
        if characters > settings.api_max_batch_characters:
            raise HTTPException(
                status_code=413,
                detail=f"the batch holds {characters} characters, more than the limit of "
                f"{settings.api_max_batch_characters} (DOCFLOW_API_MAX_BATCH_CHARACTERS); "
                "send it in smaller batches",
            )

        def score_batch(texts: list[str]) -> PredictBatchResponse:
            scorer = context.batch_scorer
            scored = scorer.score(served.model.classifier, served.model.version, texts)
            return PredictBatchResponse(
                [
                    prediction_response(item, served, settings, data.return_all_scores)
                    for item in scored
                ]
            )

        # Batches wait for their process on their own thread: the text scorers stay free.
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(context.batch_executor, score_batch, data.texts)

    @post("/predict/document/{document_id:int}", status_code=200)
    async def predict_stored_document(
        self,
        document_id: DocumentId,
        context: ApiContext,
        served: ServedModel,
        request: Request,
        data: PredictDocumentRequest | None = None,
    ) -> PredictionResponse:
        options = data or PredictDocumentRequest()
        return await predict_stored(
            context, served, request, document_id, options.ocr_language, options.return_all_scores
        )
