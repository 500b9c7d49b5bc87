"""How exceptions become answers: a clear 4xx for the client's faults, 503 to retry."""

from __future__ import annotations

import logging
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException
from litestar.response import Redirect

from docflow_assets.document_service import (
    DocumentNotFound,
    InvalidRequest,
    LeftToPipeline,
    NotReadYet,
    OriginalExpired,
    OriginalMissing,
)
from docflow_assets.exports.searchable_pdf import PagesDoNotMatch
from docflow_assets.ocr.engines import UnsupportedLanguage
from docflow_assets.store.objects import StoreUnavailable

logger = logging.getLogger("docflow.api")


CLIENT_GONE_DETAIL = "client disconnected prematurely"


def undecodable(request: Request, error: Exception) -> Response[dict[str, str]]:
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


def bad_request(request: Request, error: Exception) -> Response[dict[str, Any]]:
    """Litestar's client errors, with its one misleading multipart message made plain."""
    assert isinstance(error, HTTPException)
    detail = error.detail
    if detail == "Request Entity Too Large" and error.status_code == 400:
        detail = (
            "a multipart part's headers are longer than 4 KiB (a filename that long?); "
            "filenames are kept to 255 characters anyway"
        )
    elif detail == "Request Entity Too Large":
        limit = request.app.state.context.settings.max_upload_bytes
        detail = (
            f"the request body is larger than the server accepts: a file may hold {limit} bytes "
            "(DOCFLOW_MAX_UPLOAD_BYTES)"
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


def _client_fault(status: int, error: Exception) -> Response[dict[str, Any]]:
    return Response(
        {"status_code": status, "detail": str(error)}, status_code=status, media_type=MediaType.JSON
    )


def domain_error(request: Request, error: Exception) -> Response[dict[str, Any]]:
    """The document service's refusals: what the client asked for cannot be done as asked."""
    if isinstance(error, DocumentNotFound):
        return _client_fault(404, error)
    if isinstance(error, OriginalMissing | NotReadYet | PagesDoNotMatch):
        return _client_fault(409, error)
    if isinstance(error, OriginalExpired):
        return _client_fault(410, error)
    if isinstance(error, UnsupportedLanguage):
        return _client_fault(422, error)
    assert isinstance(error, InvalidRequest)
    return _client_fault(400, error)


DOMAIN_ERRORS = (
    DocumentNotFound,
    OriginalMissing,
    OriginalExpired,
    UnsupportedLanguage,
    InvalidRequest,
    NotReadYet,
    PagesDoNotMatch,
)


def login_required(request: Request, error: Exception) -> Response[Any]:
    """A review page without a valid key: to the sign-in form."""
    return Redirect("/review/login", status_code=303)


def left_to_pipeline(request: Request, error: Exception) -> Response[dict[str, Any]]:
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


def ocr_busy(request: Request, error: Exception) -> Response[dict[str, str]]:
    return _retry_later(str(error))


def internal_error(request: Request, error: Exception) -> Response[dict[str, str]]:
    if isinstance(error, HTTPException) and error.detail == CLIENT_GONE_DETAIL:
        # Litestar's word for a client that hung up mid-body: nobody is left to answer.
        logger.info("client left %s before sending the whole body", request.url.path)
        return Response({"detail": "incomplete request body"}, status_code=400)
    logger.exception("unhandled error on %s", request.url.path, exc_info=error)
    return Response({"detail": "internal server error"}, status_code=500, media_type=MediaType.JSON)


def unavailable(request: Request, error: Exception) -> Response[dict[str, str]]:
    """A store that is down is the server's problem, not the client's: 503, try again."""
    logger.warning("%s on %s: %s", type(error).__name__, request.url.path, error)
    what = "object store" if isinstance(error, StoreUnavailable) else "database"
    return _retry_later(f"the {what} is unavailable; nothing was changed, try again shortly")
