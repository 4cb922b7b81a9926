"""/health and /metrics, served by every long-running process."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

HealthCheck = Callable[[], Awaitable[dict[str, Any]]]


def ops_app(health: HealthCheck, registries: list[CollectorRegistry]) -> FastAPI:
    """``health`` returns a dict whose ``ok`` says if the process can do its work."""
    app = FastAPI(title="Sanitrack operations", docs_url=None, redoc_url=None)
    add_ops_routes(app, health, registries)
    return app


def add_ops_routes(app: FastAPI, health: HealthCheck, registries: list[CollectorRegistry]) -> None:
    @app.get("/health", include_in_schema=False)
    async def get_health() -> JSONResponse:
        report = await health()
        return JSONResponse(report, status_code=200 if report.get("ok") else 503)

    @app.get("/metrics", include_in_schema=False)
    async def get_metrics() -> Response:
        body = b"".join(generate_latest(registry) for registry in registries)
        return Response(body, media_type=CONTENT_TYPE_LATEST)
