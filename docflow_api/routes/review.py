"""The review page: people look at documents beside their text and prediction and set labels,
which the next training snapshot learns from. Server-rendered, no script, nothing from a CDN;
every change goes through the same service calls as the JSON routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

import anyio.to_thread
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException
from litestar.params import Body, Parameter
from litestar.response import Redirect, Template

from docflow_api.dependencies import PAGE_SIZE, ApiContext, DocumentId
from docflow_api.document_calls import ingest_upload, predict_stored
from docflow_api.schemas import UploadForm
from docflow_api.security import KEY_COOKIE, api_keys, valid_key
from docflow_assets.document_service import (
    MIN_MEAN_CONFIDENCE,
    DocumentService,
    InvalidRequest,
    LeftToPipeline,
    NotReadYet,
    OcrBusy,
    OriginalMissing,
)
from docflow_assets.document_service.records_of import DocumentRecord, PredictionRecord
from docflow_assets.exports.geometry import PageWords
from docflow_assets.exports.searchable_pdf import PagesDoNotMatch
from docflow_assets.settings import LABEL_MAX_LENGTH, DocflowSettings
from docflow_assets.store.models import DocumentStatus
from docflow_assets.store.repository import ReviewFilter

# Page images shown at once in a document's view (a 200-page PDF is shown ten pages at a time).
PAGES_SHOWN = 10
# The list's label fields are named label-<document id>.
LABEL_FIELD = "label-"


@dataclass
class LabelForm:
    label: str


@dataclass
class LoginForm:
    key: str


Form = Body(media_type=RequestEncodingType.URL_ENCODED)
Multipart = Body(media_type=RequestEncodingType.MULTI_PART)


def _to_document(document_id: int, message: str) -> Redirect:
    return Redirect(f"/review/{document_id}?{urlencode({'message': message})}", status_code=303)


def _words_on_pages(
    service: DocumentService, document_id: int, original_deleted_at: object
) -> list[PageWords]:
    """The boxes to draw over the page images: none before OCR, or once the original is gone
    (there is no image to draw them on)."""
    if original_deleted_at is not None:
        return []
    try:
        return service.words_on_pages(document_id)
    except (NotReadYet, OriginalMissing, PagesDoNotMatch):
        return []


class ReviewController(Controller):
    path = "/review"
    include_in_schema = False

    @get("/", sync_to_thread=True)
    def documents(
        self,
        service: DocumentService,
        settings: DocflowSettings,
        context: ApiContext,
        status: Annotated[str | None, Parameter(max_length=16)] = None,
        predicted_class: Annotated[str | None, Parameter(max_length=LABEL_MAX_LENGTH)] = None,
        unlabelled: bool = False,
        unsure_first: bool = False,
        page: Annotated[int, Parameter(ge=1, le=1_000_000)] = 1,
        message: Annotated[str | None, Parameter(max_length=300)] = None,
        q: Annotated[str | None, Parameter(max_length=200)] = None,
    ) -> Template:
        where = ReviewFilter(
            status=status or None,
            unlabelled=unlabelled,
            predicted_class=predicted_class or None,
            order="unsure" if unsure_first else "newest",
        )
        rows: list[tuple[DocumentRecord, PredictionRecord | None, str | None]]
        if q:
            total, found = service.search(q, page, PAGE_SIZE, where.status)
            rows = list(found)
        else:
            total, listed = service.review(where, page, PAGE_SIZE)
            rows = [(document, prediction, None) for document, prediction in listed]
        chosen = {
            "q": q or "",
            "status": where.status or "",
            "predicted_class": where.predicted_class or "",
            "unlabelled": "true" if unlabelled else "",
            "unsure_first": "true" if unsure_first else "",
        }

        def page_link(number: int) -> str:
            query = {name: value for name, value in chosen.items() if value}
            return f"/review?{urlencode({**query, 'page': number})}"

        page_context: dict[str, Any] = {
            "rows": rows,
            "total": total,
            "page": page,
            "pages": max(1, -(-total // PAGE_SIZE)),
            "page_link": page_link,
            "filters": where,
            "statuses": [value.value for value in DocumentStatus],
            "classes": service.predicted_classes(),
            "threshold": settings.confidence_threshold,
            "message": message,
            "query": q or "",
            "back": page_link(page),
            "model": context.model_holder.state(),
        }
        return Template(template_name="list.html", context=page_context)

    @get("/{document_id:int}", sync_to_thread=True)
    def document(
        self,
        document_id: DocumentId,
        service: DocumentService,
        context: ApiContext,
        message: Annotated[str | None, Parameter(max_length=300)] = None,
        from_page: Annotated[int, Parameter(ge=1, le=10_000)] = 1,
    ) -> Template:
        document, pages = service.document_with_pages(document_id)
        first = min(from_page, max(1, document.pages))
        page = {
            "document": document,
            "pages": pages,
            "shown": range(first, min(first + PAGES_SHOWN, document.pages + 1)),
            "pages_shown": PAGES_SHOWN,
            "history": service.history(document_id),
            "words": _words_on_pages(service, document_id, document.original_deleted_at),
            "low_confidence": MIN_MEAN_CONFIDENCE,
            "classes": service.predicted_classes(),
            "message": message,
            "model": context.model_holder.state(),
        }
        return Template(template_name="document.html", context=page)

    @get("/{document_id:int}/page/{number:int}", sync_to_thread=True, media_type="image/png")
    def page_image(
        self,
        document_id: DocumentId,
        number: Annotated[int, Parameter(ge=1, le=10_000)],
        service: DocumentService,
    ) -> Response[bytes]:
        return Response(service.page_image(document_id, number), media_type="image/png")

    @post("/{document_id:int}/label", sync_to_thread=True)
    def set_label(
        self,
        document_id: DocumentId,
        data: Annotated[LabelForm, Form],
        service: DocumentService,
    ) -> Redirect:
        try:
            document = service.label(document_id, data.label, "review")
        except InvalidRequest as error:
            return _to_document(document_id, f"Label not set: {error}")
        return _to_document(document_id, f"Labelled {document.label}.")

    @post("/labels")
    async def set_labels(self, request: Request, service: DocumentService) -> Redirect:
        """The list's labels, saved at once: typed ones, and accepted predictions."""
        form = await request.form()
        try:
            accepted = [int(value) for value in form.getall("accept")]
            typed = {
                int(name.removeprefix(LABEL_FIELD)): str(value)
                for name, value in form.items()
                if name.startswith(LABEL_FIELD)
            }
        except ValueError as error:
            raise HTTPException(status_code=400, detail=f"bad document id: {error}") from error
        report = await anyio.to_thread.run_sync(
            lambda: service.label_many(typed, accepted, "review")
        )
        said = f"Labelled {len(report.labelled)} documents."
        if report.refused:
            said += " Not set: " + "; ".join(
                f"{document_id}: {why}" for document_id, why in report.refused.items()
            )
        back = str(form.get("back") or "/review")
        if not back.startswith("/review"):
            back = "/review"
        separator = "&" if "?" in back else "?"
        return Redirect(f"{back}{separator}{urlencode({'message': said[:300]})}", status_code=303)

    @post("/{document_id:int}/delete", sync_to_thread=True)
    def delete_document(self, document_id: DocumentId, service: DocumentService) -> Redirect:
        report = service.delete(document_id)
        query = urlencode({"message": f"Deleted document {report.document_id}."})
        return Redirect(f"/review?{query}", status_code=303)

    @post("/{document_id:int}/predict")
    async def predict_now(
        self, document_id: DocumentId, context: ApiContext, request: Request
    ) -> Redirect:
        try:
            prediction = await predict_stored(
                context, context.served(), request, document_id, None, False
            )
        except (LeftToPipeline, OcrBusy) as error:
            return _to_document(document_id, str(error))
        return _to_document(
            document_id, f"Predicted {prediction.predicted_class} ({prediction.confidence:.2f})."
        )

    @post("/upload")
    async def upload(
        self, data: Annotated[UploadForm, Multipart], service: DocumentService
    ) -> Redirect:
        try:
            result = await ingest_upload(service, data, label_source="review")
        except HTTPException as error:
            query = urlencode({"message": f"Not stored: {error.detail}"})
            return Redirect(f"/review?{query}", status_code=303)
        said = "Already stored" if result.duplicate else "Stored"
        return _to_document(result.document.id, f"{said}; the pipeline will read it.")

    @get("/login", sync_to_thread=False)
    def login_form(self) -> Template:
        return Template(template_name="login.html", context={"message": None})

    @post("/login", sync_to_thread=False)
    def login(
        self, data: Annotated[LoginForm, Form], settings: DocflowSettings, request: Request
    ) -> Response[Any]:
        if not valid_key(data.key, api_keys(settings)):
            return Template(
                template_name="login.html",
                context={"message": "That key is not valid."},
                status_code=401,
            )
        cookie = Cookie(
            key=KEY_COOKIE,
            value=data.key,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return Redirect("/review", status_code=303, cookies=[cookie])
