"""The web dashboard's files (docs/dashboard.md): a static bundle under ``/dashboard``, and ``/`` sending browsers
there.

Only the files shipped in ``relay/dashboard/static`` are served, listed once when first asked for: a path is looked
up in that list, never joined onto a directory, so no ``..``, encoded slash or symlink reaches anything else. Each
answer has its content type, an ETag (304 on ``If-None-Match``), ``Cache-Control: no-cache`` (revalidated, so an
upgrade shows at once) and a Content-Security-Policy allowing only the dashboard's own scripts, styles and API
calls: no inline script, no third party, no framing.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import resources
from typing import TYPE_CHECKING

from relay.errors import RelayError
from relay.http.messages import Headers, Request, Response, StreamResponse
from relay.route import Route

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    from relay.app import Relay

__all__ = ["CSP", "ROUTES", "files"]

PREFIX = "/dashboard"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}
SECURITY: Headers = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


def _walk(folder: Traversable, prefix: str) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for entry in folder.iterdir():
        if entry.is_dir():
            found |= _walk(entry, f"{prefix}{entry.name}/")
        elif any(entry.name.endswith(suffix) for suffix in TYPES):
            found[prefix + entry.name] = entry.read_bytes()
    return found


@functools.cache
def files() -> dict[str, tuple[bytes, Headers]]:
    """Every servable file by its path under ``/dashboard/``, with its headers (type, ETag, caching, CSP)."""
    found = _walk(resources.files("relay.dashboard") / "static", "")
    served = {}
    for path, body in found.items():
        kind = TYPES[path[path.rindex(".") :]]
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        headers = ((b"content-type", kind.encode()), (b"etag", etag.encode()), (b"cache-control", b"no-cache"))
        served[path] = (body, headers + SECURITY)
    return served


def _answer(request: Request, path: str) -> Response:
    found = files().get(path)
    if found is None:
        raise RelayError(404, "not_found", f"no dashboard file {path!r}", code="unknown_route")
    body, headers = found
    etag = dict(headers)[b"etag"].decode()
    wanted = request.header(b"if-none-match") or ""
    if etag in (tag.strip() for tag in wanted.split(",")):
        return Response(304, b"", tuple(h for h in headers if h[0] != b"content-type"))
    return Response(200, body, headers)


async def index(relay: Relay, request: Request, out: StreamResponse) -> Response:
    """``/dashboard``: the page (its hash, ``#/keys`` and so on, picks the view)."""
    request.record.logged = False  # type: ignore[attr-defined]
    return _answer(request, "index.html")


async def static_file(relay: Relay, request: Request, out: StreamResponse) -> Response:
    request.record.logged = False  # type: ignore[attr-defined]
    return _answer(request, request.params["path"] or "index.html")


async def root(relay: Relay, request: Request, out: StreamResponse) -> Response:
    """``/``: a browser (asking for HTML) is sent to the dashboard; anything else gets a 404."""
    request.record.logged = False  # type: ignore[attr-defined]
    if "text/html" in (request.header(b"accept") or ""):
        return Response(302, b"", ((b"location", PREFIX.encode()), (b"cache-control", b"no-store")))
    raise RelayError(404, "not_found", "no route for GET /: the dashboard is at /dashboard", code="unknown_route")


ROUTES: tuple[Route, ...] = (
    Route("GET", "/", root),
    Route("GET", PREFIX, index),
    Route("GET", PREFIX + "/", index),
    Route("GET", PREFIX + "/{path:path}", static_file),
)
