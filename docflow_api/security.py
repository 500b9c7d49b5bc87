"""API keys and the download header."""

from __future__ import annotations

import hmac
import string
from typing import Any
from urllib.parse import quote

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

# Open without a key: probes, scrapers, the index page and the API's own description (it holds
# no data; a browser could not send the key to read it).
OPEN_PATHS = {"/", "/health", "/metrics"}
OPEN_PREFIXES = ("/schema",)


def api_key_guard(keys: frozenset[str]) -> Any:
    def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        path = connection.url.path
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
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
