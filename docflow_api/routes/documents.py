"""Document routes: upload, read back, label, list, prediction history."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, BinaryIO, cast

import anyio.to_thread
from litestar import Request, Response, get, post, put
from litestar.datastructures import State
from litestar.enums import RequestEncodingType
from litestar.exceptions import (
    HTTPException,
    NotFoundException,
    ValidationException,
)
from litestar.params import Body, Parameter
from sqlalchemy import func, select

from docflow_api import metrics
from docflow_api.dependencies import (
    DocumentId,
    as_utc,
    load_document,
    served_model,
    settings_of,
    store_of,
    stored_fields,
    upload_response,
)
from docflow_api.routes.predictions import predict_stored
from docflow_api.schemas import (
    DocumentDetail,
    DocumentPage,
    HistoryItem,
    LabelRequest,
    PageText,
    PredictionHistory,
    UploadAndPredictForm,
    UploadAndPredictResponse,
    UploadForm,
    UploadResponse,
)
from docflow_api.security import content_disposition
from docflow_assets.ingest import IngestResult, RejectedDocument, ingest, normalise_label
from docflow_assets.ocr.engines import UnsupportedLanguage, check_languages
from docflow_assets.store.database import session_scope
from docflow_assets.store.models import (
    Document,
    DocumentStatus,
    OcrResult,
    Prediction,
)
from docflow_assets.store.objects import ObjectNotFound

REJECTION_STATUS = {"too_large": 413, "too_many_pixels": 413, "unsupported_type": 415}


async def _ingest_upload(state: State, form: UploadForm | UploadAndPredictForm) -> IngestResult:
    try:
        result = await anyio.to_thread.run_sync(
            lambda: ingest(
                cast(BinaryIO, form.file.file),
                form.file.filename or "unnamed",
                settings_of(state),
                store_of(state),
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
        upload_response(result.document, result.duplicate),
        status_code=200 if result.duplicate else 201,
    )


@post("/upload-and-predict", status_code=200)
async def upload_and_predict(
    data: Annotated[UploadAndPredictForm, Body(media_type=RequestEncodingType.MULTI_PART)],
    state: State,
    request: Request,
) -> UploadAndPredictResponse:
    served_model(state)  # refuse before storing anything when no model can answer
    language = data.ocr_language.strip() if data.ocr_language else None
    if language:  # an empty field means the default, as an absent one does
        try:
            check_languages(language)
        except UnsupportedLanguage as error:
            raise HTTPException(status_code=422, detail=str(error)) from error
    result = await _ingest_upload(state, data)
    prediction = await predict_stored(
        state, request, result.document.id, language or None, data.return_all_scores
    )
    document = await anyio.to_thread.run_sync(load_document, state, result.document.id)
    return UploadAndPredictResponse(upload_response(document, result.duplicate), prediction)


@get("/document/{document_id:int}", sync_to_thread=True)
def get_document(document_id: DocumentId, state: State) -> DocumentDetail:
    with session_scope(settings_of(state).resolved_database_url) as session:
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
            **stored_fields(document),
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
    document = load_document(state, document_id)
    try:
        data = store_of(state).get_bytes(document.storage_key)
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
    with session_scope(settings_of(state).resolved_database_url) as session:
        document = session.get(Document, document_id)
        if document is None:
            raise NotFoundException(detail=f"document {document_id} does not exist")
        document.label = label
        document.label_source = "api"
        document.labelled_at = datetime.now(UTC)
        return upload_response(document, duplicate=False)


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
    with session_scope(settings_of(state).resolved_database_url) as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        documents = session.scalars(
            query.order_by(Document.id).offset((page - 1) * page_size).limit(page_size)
        ).all()
        return DocumentPage([upload_response(d, False) for d in documents], total, page, page_size)


@get("/prediction/history/{document_id:int}", sync_to_thread=True)
def prediction_history(document_id: DocumentId, state: State) -> PredictionHistory:
    load_document(state, document_id)
    with session_scope(settings_of(state).resolved_database_url) as session:
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
