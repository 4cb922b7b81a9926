"""The dispatcher's live map: ``GET /`` (the page) and ``/static`` (its files and Leaflet).

The page is static: plain HTML, CSS and JavaScript modules under ``api/web``, Leaflet from
the ``xstatic-leaflet`` package; everything it shows it reads from ``/api/v1`` and
``/ws/live`` with the token it keeps. No CDN and no build step, so the map works offline
and what is served is what is in the repository.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse
from starlette.responses import Response as StarletteResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

WEB_DIR = Path(__file__).parent / "web"
STATIC_DIR = WEB_DIR / "static"
INDEX_FILE = WEB_DIR / "index.html"
CUSTOMERS_FILE = WEB_DIR / "customers.html"
INVOICES_FILE = WEB_DIR / "invoices.html"

# Files change with a release, not with a hash in their name: the browser keeps them but
# asks again each time (a 304 when unchanged), so an upgrade never meets a stale script.
REVALIDATE = "no-cache"

# Only a plain host[:port] goes into the policy; anything else in Host is left out.
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


def content_security_policy(host: str | None) -> str:
    """The page's policy: scripts, styles and connections to this server only.

    ``'self'`` covers ``ws:``/``wss:`` of the same host in CSP 3 browsers; the explicit
    WebSocket origins are for the ones that read the older rule. Map tiles may come from
    a configured tile server, hence any http(s) image.
    """
    connect = ["'self'"]
    if host and _HOST.match(host):
        connect += [f"ws://{host}", f"wss://{host}"]
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data: https: http:",
            "font-src 'self'",
            f"connect-src {' '.join(connect)}",
            "manifest-src 'self'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


class _StaticFiles(StaticFiles):
    """Starlette's static files, revalidated on each use and never sniffed as another type."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> StarletteResponse:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = REVALIDATE
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def leaflet_dir() -> Path:
    """Where ``xstatic-leaflet`` keeps leaflet.js, leaflet.css and images/."""
    try:
        import xstatic.pkg.leaflet as leaflet
    except ImportError as missing:  # a packaging mistake: say which package
        raise RuntimeError(
            "the live map needs the xstatic-leaflet package (Leaflet): pip install xstatic-leaflet"
        ) from missing
    return Path(leaflet.BASE_DIR)


def mount_pages(app: FastAPI) -> None:
    """Serve the live map page at ``/``, the customer book at ``/customers``, the invoices
    at ``/invoices`` and their files under ``/static`` on ``app``."""

    @app.get("/", include_in_schema=False)
    async def live_map(request: Request) -> Response:
        return FileResponse(
            INDEX_FILE,
            media_type="text/html; charset=utf-8",
            headers=_page_headers(request.headers.get("host")),
        )

    @app.get("/customers", include_in_schema=False)
    async def customer_book(request: Request) -> Response:
        return FileResponse(
            CUSTOMERS_FILE,
            media_type="text/html; charset=utf-8",
            headers=_page_headers(request.headers.get("host")),
        )

    @app.get("/invoices", include_in_schema=False)
    async def invoices(request: Request) -> Response:
        return FileResponse(
            INVOICES_FILE,
            media_type="text/html; charset=utf-8",
            headers=_page_headers(request.headers.get("host")),
        )

    # The more specific mount first: /static/leaflet is not a folder of api/web/static.
    app.mount("/static/leaflet", _StaticFiles(directory=leaflet_dir()), name="leaflet")
    app.mount("/static", _StaticFiles(directory=STATIC_DIR), name="static")


def _page_headers(host: str | None) -> dict[str, str]:
    return {
        "Cache-Control": REVALIDATE,
        "Content-Security-Policy": content_security_policy(host),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }
