"""The HTTP app: the API under /api/v1 (OpenAPI at /api/docs), the live feed /ws/live, the
dispatcher page at /, and /health and /metrics."""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

import reports
from api import (
    routes_alerts,
    routes_auth,
    routes_billing,
    routes_change_requests,
    routes_customers,
    routes_fleet,
    routes_invoice_corrections,
    routes_invoice_documents,
    routes_invoice_issuing,
    routes_invoice_revenue,
    routes_invoices,
    routes_map,
    routes_plans,
    routes_positions,
    routes_routes,
    routes_spreadsheets,
)
from api.auth import Authenticator
from api.context import ApiContext
from api.errors import install_error_handlers
from api.live import install_live
from api.ops import HealthCheck, add_ops_routes
from api.pages import mount_pages


def http_app(
    ctx: ApiContext,
    authenticator: Authenticator,
    health: HealthCheck,
    registries: list[CollectorRegistry],
) -> FastAPI:
    app = FastAPI(
        title="Sanitrack",
        summary="Fleet telematics, route compliance and billing for waste collection",
        version="1",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.ctx = ctx
    app.state.authenticator = authenticator
    install_error_handlers(app, extra_not_found=(reports.NotFound,))
    for module in (
        routes_auth,
        routes_fleet,
        routes_alerts,
        routes_routes,
        routes_plans,
        routes_positions,
        routes_map,
        routes_spreadsheets,  # before routes_customers: /customers/export is not a customer id
        routes_customers,
        routes_change_requests,
        routes_billing,
        routes_invoices,
        routes_invoice_issuing,
        routes_invoice_corrections,
        routes_invoice_documents,
        routes_invoice_revenue,
    ):
        app.include_router(module.router)
    if ctx.feed is not None:
        install_live(app, ctx.feed)
    add_ops_routes(app, health, registries)
    mount_pages(app)
    return app
