"""API keys and the download header."""

from __future__ import annotations

import hmac
import string
from typing import Any
from urllib.parse import quote

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

from docflow_assets.settings import DocflowSettings

# Open without a key: probes, scrapers, the index page and the API's own description (it holds
# no data; a browser could not send the key to read it).
OPEN_PATHS = {"/", "/health", "/metrics", "/review/login"}
OPEN_PREFIXES = ("/schema",)
# The review page signs in once (a form) and then sends the key as this cookie.
KEY_COOKIE = "docflow_key"
REVIEW_PREFIX = "/review"


class LoginRequired(NotAuthorizedException):
    """A review page asked for without a valid key: the browser goes to the sign-in form."""


def api_keys(settings: DocflowSettings) -> frozenset[str]:
    """The keys of ``DOCFLOW_API_KEYS``; empty: the API is open."""
    return frozenset(key.strip() for key in (settings.api_keys or "").split(",") if key.strip())


def valid_key(given: str, keys: frozenset[str]) -> bool:
    # Headers arrive as Latin-1 text; compared as bytes, a key with other characters is
    # simply wrong (compare_digest refuses non-ASCII text outright).
    raw = given.encode("latin-1", "replace")
    return any(hmac.compare_digest(raw, key.encode()) for key in keys)


def carries_valid_key(connection: ASGIConnection, keys: frozenset[str]) -> bool:
    """The X-API-Key header or the review page's cookie holds one of ``keys``."""
    header = connection.headers.get("x-api-key", "")
    cookie = connection.cookies.get(KEY_COOKIE, "")
    return valid_key(header, keys) or valid_key(cookie, keys)


def api_key_guard(keys: frozenset[str]) -> Any:
    def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        path = connection.url.path
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            return
        if carries_valid_key(connection, keys):
            return
        if path.startswith(REVIEW_PREFIX):
            raise LoginRequired(detail="sign in with an API key")
        raise NotAuthorizedException(detail="a valid X-API-Key header is required")

    return guard


SAFE_FALLBACK_CHARACTERS = frozenset(string.ascii_letters + string.digits + " ._-()[]+,")


def content_disposition(filename: str) -> str:
    """RFC 6266: a plain-ASCII ``filename`` for old clients (letters, digits and a few marks;
    anything else becomes ``_``) and the exact name, percent-encoded UTF-8, in ``filename*``
    (RFC 5987). Nothing of the stored name reaches the header unescaped."""
    fallback = "".join(c if c in SAFE_FALLBACK_CHARACTERS else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
