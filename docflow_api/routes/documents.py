"""Document routes: upload, read back, label, list, prediction history."""

from __future__ import annotations

from typing import Annotated, Literal

import anyio.to_thread
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.enums import RequestEncodingType
from litestar.params import Body, Parameter

from docflow_api.dependencies import (
    PAGE_SIZE,
    ApiContext,
    DocumentId,
    PageSize,
    as_utc,
    stored_fields,
    upload_response,
)
from docflow_api.document_calls import ingest_upload, predict_stored
from docflow_api.model_holder import ServedModel
from docflow_api.schemas import (
    DeletionResponse,
    DocumentDetail,
    DocumentPage,
    HistoryItem,
    LabelRequest,
    LatestPrediction,
    ListedDocument,
    PageText,
    PredictionHistory,
    UploadAndPredictForm,
    UploadAndPredictResponse,
    UploadForm,
    UploadResponse,
)
from docflow_api.security import content_disposition
from docflow_assets.document_service import DocumentService
from docflow_assets.document_service.records_of import DocumentRecord, PredictionRecord
from docflow_assets.exports.formats import Export
from docflow_assets.ocr.engines import check_languages
from docflow_assets.settings import LABEL_MAX_LENGTH

Multipart = Body(media_type=RequestEncodingType.MULTI_PART)


def _listed(
    document: DocumentRecord, latest: PredictionRecord | None, snippet: str | None = None
) -> ListedDocument:
    return ListedDocument(
        **stored_fields(document),
        latest_prediction=None
        if latest is None
        else LatestPrediction(
            latest.predicted_class,
            latest.confidence,
            latest.model_version,
            latest.source,
            as_utc(latest.created_at),
        ),
        snippet=snippet,
    )


def _export_response(export: Export) -> Response[bytes]:
    return Response(
        export.content,
        media_type=export.media_type,
        headers={"Content-Disposition": content_disposition(export.filename)},
    )


class DocumentController(Controller):
    tags = ["documents"]

    @post("/upload", status_code=201)
    async def upload(
        self, data: Annotated[UploadForm, Multipart], service: DocumentService
    ) -> Response[UploadResponse]:
        result = await ingest_upload(service, data)
        return Response(
            upload_response(result.document, result.duplicate),
            status_code=200 if result.duplicate else 201,
        )

    @post("/upload-and-predict", status_code=200)
    async def upload_and_predict(
        self,
        data: Annotated[UploadAndPredictForm, Multipart],
        context: ApiContext,
        # Asked for before the upload is stored: with no model, 503 and nothing kept.
        served: ServedModel,
        request: Request,
    ) -> UploadAndPredictResponse:
        # An empty field means the default languages, as an absent one does.
        language = (data.ocr_language or "").strip() or None
        if language is not None:
            check_languages(language)  # refused before anything is stored
        result = await ingest_upload(context.service, data)
        document_id = result.document.id
        prediction = await predict_stored(
            context,
            served,
            request,
            document_id,
            language,
            data.return_all_scores,
            result.original,
        )
        document = await anyio.to_thread.run_sync(context.service.document, document_id)
        return UploadAndPredictResponse(upload_response(document, result.duplicate), prediction)

    @get("/document/{document_id:int}", sync_to_thread=True)
    def get_document(self, document_id: DocumentId, service: DocumentService) -> DocumentDetail:
        document, rows = service.document_with_pages(document_id)
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
    def get_document_file(
        self, document_id: DocumentId, service: DocumentService
    ) -> Response[bytes]:
        document, data = service.original(document_id)
        return Response(
            data,
            media_type=document.content_type,
            headers={"Content-Disposition": content_disposition(document.filename)},
        )

    @get(
        "/document/{document_id:int}/pdf",
        sync_to_thread=True,
        media_type="application/pdf",
        summary="Searchable PDF",
    )
    def get_document_pdf(
        self, document_id: DocumentId, service: DocumentService
    ) -> Response[bytes]:
        """The original pages (an image embedded as it is, a PDF's own pages) with the stored
        words as an invisible, searchable and selectable text layer. 409 before OCR has run."""
        return _export_response(service.export(document_id, "pdf"))

    @get("/document/{document_id:int}/ocr", sync_to_thread=True, media_type="*/*")
    def get_document_ocr(
        self,
        document_id: DocumentId,
        service: DocumentService,
        output_format: Annotated[
            Literal["hocr", "alto"],
            Parameter(query="format", description="hocr (XHTML) or alto (ALTO v4 XML)."),
        ],
    ) -> Response[bytes]:
        """The stored words with their boxes (in the original's pixels) and confidences."""
        return _export_response(service.export(document_id, output_format))

    @delete("/document/{document_id:int}", sync_to_thread=True, status_code=200)
    def delete_document(
        self, document_id: DocumentId, service: DocumentService
    ) -> DeletionResponse:
        """The document goes with its original, OCR text, predictions and feature rows; its
        label leaves later training snapshots (those already taken keep it)."""
        report = service.delete(document_id)
        return DeletionResponse(
            report.document_id,
            report.ocr_rows,
            report.predictions,
            report.feature_rows,
            report.original,
        )

    @put("/document/{document_id:int}/label", sync_to_thread=True)
    def set_label(
        self, document_id: DocumentId, data: LabelRequest, service: DocumentService
    ) -> UploadResponse:
        return upload_response(service.label(document_id, data.label, "api"), duplicate=False)

    @get("/documents", sync_to_thread=True)
    def list_documents(
        self,
        service: DocumentService,
        page: Annotated[int, Parameter(ge=1, le=1_000_000)] = 1,
        page_size: PageSize = PAGE_SIZE,
        status: Annotated[str | None, Parameter(max_length=16)] = None,
        label: Annotated[str | None, Parameter(max_length=LABEL_MAX_LENGTH)] = None,
        q: Annotated[
            str | None,
            Parameter(
                max_length=200,
                description="Full-text search of the OCR text: documents holding every word, "
                "best match first, each with a snippet. The newest 2,000 matching pages are "
                "ranked; a broader query shows those.",
            ),
        ] = None,
    ) -> DocumentPage:
        if q:
            total, found = service.search(q, page, page_size, status)
            items = [_listed(document, latest, snippet) for document, latest, snippet in found]
        else:
            total, listed = service.documents(page, page_size, status, label)
            items = [_listed(document, latest) for document, latest in listed]
        return DocumentPage(items, total, page, page_size)

    @get("/prediction/history/{document_id:int}", sync_to_thread=True)
    def prediction_history(
        self, document_id: DocumentId, service: DocumentService
    ) -> PredictionHistory:
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
                for r in service.history(document_id)
            ],
        )
