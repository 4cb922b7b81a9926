"""Invoices over HTTP: the seller's details, series, billing runs and periods, invoices
(list, detail, delete a draft) and ad-hoc invoices. Issuing is in
``api.routes_invoice_issuing``; corrections (cancel, explain, replace, adjust, agreements,
delivery, adjustment proposals) in ``api.routes_invoice_corrections``; PDFs and printing in
``api.routes_invoice_documents``: all under the roles set here.

Who may do what:
- read (seller, series, runs, periods, invoices, proposals): admin, accountant,
  dispatcher, cashier;
- everything else: admin, accountant (``api.routes_billing.Accounting``).

Every write runs in one transaction with its audit entries (the billing services write
them). Every query is the caller's tenant's, so another tenant's id answers 404 like a
missing one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from psycopg import AsyncConnection
from pydantic import BaseModel, ConfigDict, Field

import billing
from accounts import Role
from api.auth import Principal, allow
from api.context import MAX_ID, Ctx, LocalDate, ObjectId
from api.routes_billing import Accounting
from api.routes_customers import as_json, local_today
from billing.invoice_records import invoice_records
from billing.invoices import lines_of, references_of
from customers.models import BillingPeriod

router = APIRouter(prefix="/api/v1", tags=["invoices"])

INVOICE_READERS = frozenset({Role.ADMIN, Role.ACCOUNTANT, Role.DISPATCHER, Role.CASHIER})
InvoiceReader = Annotated[Principal, Depends(allow(INVOICE_READERS))]

OptionalId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


# ---------------------------------------------------------------- bodies


class SellerDetails(BaseModel):
    """The company as printed on its invoices; issued invoices keep what they were issued
    with."""

    model_config = ConfigDict(extra="forbid")

    legal_name: str = Field(min_length=1, max_length=300)
    tax_code: str = Field(pattern=r"^([0-9]{10}(-[0-9]{3})?|[0-9]{12})$")
    address: str = Field(min_length=1, max_length=500)
    phone: str = Field("", max_length=50)
    email: str = Field("", max_length=320, pattern=r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$")
    bank_account: str = Field("", max_length=100)
    bank_name: str = Field("", max_length=200)


class BillingRunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    billing_period: BillingPeriod
    period_start: LocalDate
    series_id: int = Field(ge=1, le=MAX_ID)


# ---------------------------------------------------------------- answers


def series_json(series: billing.Series) -> dict[str, Any]:
    return {
        **as_json(series),
        "code": series.code,
        "used": series.used,
        "issued_count": series.next_number - 1,
    }


def invoice_json(invoice: billing.Invoice) -> dict[str, Any]:
    return {
        **as_json(invoice),
        "number_text": invoice.number_text,
        "series_code": invoice.series_code,
    }


def line_json(line: billing.InvoiceLine) -> dict[str, Any]:
    return {**as_json(line), "total_vnd": line.total_vnd}


async def invoice_detail(
    conn: AsyncConnection[Any], tenant_id: int, invoice_id: int
) -> dict[str, Any]:
    """The invoice with its lines, the invoices it refers to and what is kept beside it."""
    invoice = await billing.get_invoice(conn, tenant_id, invoice_id)
    lines = (await lines_of(conn, [invoice_id]))[invoice_id]
    references = (await references_of(conn, [invoice_id]))[invoice_id]
    return {
        **invoice_json(invoice),
        "lines": [line_json(line) for line in lines],
        "references": [as_json(r) for r in references],
        **await invoice_records(conn, tenant_id, invoice_id),
        "pdf_url": f"/api/v1/invoices/{invoice_id}/pdf",  # api.routes_invoice_documents
    }


def run_json(run: billing.BillingRun) -> dict[str, Any]:
    return as_json(run)


# ---------------------------------------------------------------- seller and series


@router.get("/billing/seller")
async def get_seller(principal: InvoiceReader, ctx: Ctx) -> dict[str, Any] | None:
    """The company as printed on its invoices; null until set."""
    async with ctx.pool.connection() as conn:
        seller = await billing.get_seller(conn, principal.tenant_id)
    return None if seller is None else seller.as_json()


@router.put("/billing/seller")
async def set_seller(body: SellerDetails, principal: Accounting, ctx: Ctx) -> dict[str, Any]:
    async with ctx.pool.connection() as conn, conn.transaction():
        seller = await billing.set_seller(
            conn, principal.tenant_id, billing.Seller(**body.model_dump())
        )
    return seller.as_json()


@router.get("/invoice-series")
async def list_series(principal: InvoiceReader, ctx: Ctx) -> list[dict[str, Any]]:
    """Every series, newest year first; ``used`` ones cannot be edited, only retired."""
    async with ctx.pool.connection() as conn:
        return [series_json(s) for s in await billing.list_series(conn, principal.tenant_id)]


@router.get("/invoice-series/{series_id}")
async def get_series(series_id: ObjectId, principal: InvoiceReader, ctx: Ctx) -> dict[str, Any]:
    async with ctx.pool.connection() as conn:
        return series_json(await billing.get_series(conn, principal.tenant_id, series_id))


@router.post("/invoice-series", status_code=201)
async def create_series(body: billing.NewSeries, principal: Accounting, ctx: Ctx) -> dict[str, Any]:
    """A series: template digit and six-character symbol (C26TAA); 409 when it exists."""
    async with ctx.pool.connection() as conn, conn.transaction():
        series = await billing.create_series(
            conn, principal.tenant_id, principal.actor, ctx.clock.now(), body
        )
    return series_json(series)


@router.patch("/invoice-series/{series_id}")
async def update_series(
    series_id: ObjectId, body: billing.SeriesChanges, principal: Accounting, ctx: Ctx
) -> dict[str, Any]:
    """Rename or retire (``active: false``) a series; a used series keeps its template,
    symbol and name (409)."""
    async with ctx.pool.connection() as conn, conn.transaction():
        series = await billing.update_series(
            conn, principal.tenant_id, principal.actor, ctx.clock.now(), series_id, body
        )
    return series_json(series)


# ---------------------------------------------------------------- billing runs and periods


@router.post("/billing-runs", status_code=201)
async def run_billing(body: BillingRunRequest, principal: Accounting, ctx: Ctx) -> dict[str, Any]:
    """Compute the period's charges and draft one invoice per customer owed something no
    issued invoice covers; the period's earlier drafts are drafted again. Postpaid
    customers wait until the period is over (the company's today). Runs inline."""
    now = ctx.clock.now()
    async with ctx.pool.connection() as conn, conn.transaction():
        run = await billing.run_billing(
            conn,
            principal.tenant_id,
            principal.actor,
            now,
            body.billing_period,
            body.period_start,
            body.series_id,
            today=local_today(ctx, now),
        )
    return run_json(run)


@router.get("/billing-runs")
async def list_billing_runs(
    principal: InvoiceReader, ctx: Ctx, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[dict[str, Any]]:
    """The latest runs first."""
    async with ctx.pool.connection() as conn:
        runs = await billing.list_billing_runs(conn, principal.tenant_id, limit=limit)
    return [run_json(r) for r in runs]


@router.get("/billing-periods/{billing_period}/{period_start}")
async def period_state(
    billing_period: BillingPeriod, period_start: LocalDate, principal: InvoiceReader, ctx: Ctx
) -> dict[str, Any]:
    """Open or closed, and how many of its invoices are drafts and how many issued."""
    async with ctx.pool.connection() as conn:
        state = await billing.period_state(conn, principal.tenant_id, billing_period, period_start)
    return as_json(state)


@router.post("/billing-periods/{billing_period}/{period_start}/close")
async def close_period(
    billing_period: BillingPeriod, period_start: LocalDate, principal: Accounting, ctx: Ctx
) -> dict[str, Any]:
    """Lock the period: no run and no draft for it again; 409 while drafts of it are left."""
    async with ctx.pool.connection() as conn, conn.transaction():
        state = await billing.close_period(
            conn,
            principal.tenant_id,
            principal.actor,
            ctx.clock.now(),
            billing_period,
            period_start,
        )
    return as_json(state)


# ---------------------------------------------------------------- invoices


@router.get("/invoices")
async def list_invoices(
    principal: InvoiceReader,
    ctx: Ctx,
    status: billing.InvoiceStatus | None = None,
    customer_id: OptionalId = None,
    period_start: Annotated[LocalDate | None, Query()] = None,
    billing_run_id: OptionalId = None,
    series_id: OptionalId = None,
    area_id: OptionalId = None,
    collector_staff_id: OptionalId = None,
    issued_from: Annotated[LocalDate | None, Query()] = None,
    issued_to: Annotated[LocalDate | None, Query(description="inclusive")] = None,
    number: Annotated[int | None, Query(ge=1, le=99_999_999)] = None,
    buyer: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=100,
            description="the start of a buyer's code or a part"
            " of the name, as written (diacritics count)",
        ),
    ] = None,
    after_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="the last id seen")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Invoices, newest id first; the next page continues with ``after_id`` = the last id
    of this one. ``area_id`` and ``collector_staff_id``: of the points on its lines."""
    filters = billing.InvoiceFilter(
        status=status,
        customer_id=customer_id,
        period_start=period_start,
        billing_run_id=billing_run_id,
        series_id=series_id,
        area_id=area_id,
        collector_staff_id=collector_staff_id,
        issued_from=issued_from,
        issued_to=issued_to,
        number=number,
        buyer=buyer,
    )
    async with ctx.pool.connection() as conn:
        found = await billing.list_invoices(
            conn, principal.tenant_id, filters, after_id=after_id, limit=limit
        )
    return [invoice_json(i) for i in found]


@router.post("/invoices/adhoc", status_code=201)
async def create_adhoc_invoice(
    body: billing.NewAdhocInvoice, principal: Accounting, ctx: Ctx
) -> dict[str, Any]:
    """Draft an invoice for work outside the plan; a line naming a stop visit carries its
    proof of service."""
    async with ctx.pool.connection() as conn, conn.transaction():
        draft_id = await billing.create_adhoc_invoice(
            conn, principal.tenant_id, principal.actor, ctx.clock.now(), body
        )
        return await invoice_detail(conn, principal.tenant_id, draft_id)


@router.get("/invoices/{invoice_id}")
async def get_invoice(invoice_id: ObjectId, principal: InvoiceReader, ctx: Ctx) -> dict[str, Any]:
    """The invoice, its lines, the invoices it adjusts or replaces, the corrections of it,
    its error notices, the buyer's agreements (without their files) and the e-invoice
    provider's latest attempts."""
    async with ctx.pool.connection() as conn:
        return await invoice_detail(conn, principal.tenant_id, invoice_id)


@router.delete("/invoices/{invoice_id}", status_code=204)
async def delete_draft(invoice_id: ObjectId, principal: Accounting, ctx: Ctx) -> Response:
    """A draft may go; anything issued stays (409)."""
    async with ctx.pool.connection() as conn, conn.transaction():
        await billing.delete_draft(
            conn, principal.tenant_id, principal.actor, ctx.clock.now(), invoice_id
        )
    return Response(status_code=204)
