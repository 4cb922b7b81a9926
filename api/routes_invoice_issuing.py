"""Issuing invoices over HTTP: one draft, or many at once (a list of drafts, or every
draft of a billing run) in id order, 1,000 per transaction. Numbers come from the series
under its lock (billing.issuing), so concurrent issuers never share or skip a number; the
issue date is the company's today. Admins' and accountants'.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse
from psycopg import AsyncConnection
from pydantic import BaseModel, ConfigDict, Field

import billing
from api.auth import Principal
from api.context import MAX_ID, ApiContext, Ctx, ObjectId
from api.errors import error_body
from api.routes_billing import Accounting
from api.routes_customers import local_today
from api.routes_invoices import invoice_json

router = APIRouter(prefix="/api/v1", tags=["invoices"])

ISSUE_CHUNK = 1000  # invoices per transaction of a batch issue
MAX_BATCH = 1_000_000


class BatchIssue(BaseModel):
    """The invoices to issue: these drafts, or every draft of a billing run."""

    model_config = ConfigDict(extra="forbid")

    invoice_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None = Field(
        None, min_length=1, max_length=MAX_BATCH
    )
    billing_run_id: int | None = Field(None, ge=1, le=MAX_ID)


def issue_summary(issued: Sequence[billing.Issued]) -> dict[str, Any]:
    """How many were issued, their total, and per series the first and last number."""
    by_series: dict[str, dict[str, Any]] = {}
    for item in issued:
        code = item.template + item.symbol
        entry = by_series.setdefault(
            code, {"series": code, "count": 0, "first_number": item.number, "last_number": 0}
        )
        entry["count"] += 1
        entry["first_number"] = min(entry["first_number"], item.number)
        entry["last_number"] = max(entry["last_number"], item.number)
    return {
        "issued": len(issued),
        "total_vnd": sum(item.total_vnd for item in issued),
        "series": list(by_series.values()),
    }


@router.post("/invoices/{invoice_id}/issue")
async def issue_invoice(invoice_id: ObjectId, principal: Accounting, ctx: Ctx) -> dict[str, Any]:
    """Give the draft its number, dated the company's today; 409 when it is not a draft."""
    now = ctx.clock.now()
    async with ctx.pool.connection() as conn, conn.transaction():
        await billing.issue_invoices(
            conn,
            principal.tenant_id,
            principal.actor,
            now,
            [invoice_id],
            issue_date=local_today(ctx, now),
        )
        return invoice_json(await billing.get_invoice(conn, principal.tenant_id, invoice_id))


@router.post("/invoices/issue", response_model=None)
async def issue_batch(
    body: BatchIssue, principal: Accounting, ctx: Ctx
) -> dict[str, Any] | JSONResponse:
    """Issue drafts in id order, 1,000 per transaction: ``invoice_ids``, or every draft of
    ``billing_run_id``. The counts, the total and per series the first and last number.
    When a transaction fails after others committed, the answer is the error with what was
    issued before it (``issued``)."""
    if (body.invoice_ids is None) == (body.billing_run_id is None):
        raise HTTPException(
            422, detail={"field": "invoice_ids", "reason": "give invoice_ids or billing_run_id"}
        )
    async with ctx.pool.connection() as conn:
        if body.invoice_ids is not None:
            ids = sorted(set(body.invoice_ids))
        else:
            ids = await _drafts_of_run(conn, principal.tenant_id, body.billing_run_id or 0)
        await conn.commit()  # the reads' transaction ends: each chunk is one of its own
        return await _issue_in_chunks(conn, ctx, principal, ids)


async def _drafts_of_run(conn: AsyncConnection[Any], tenant_id: int, run_id: int) -> list[int]:
    ids = await billing.invoice_ids(
        conn,
        tenant_id,
        billing.InvoiceFilter(status=billing.InvoiceStatus.DRAFT, billing_run_id=run_id),
    )
    if not ids:
        any_of_run = await billing.list_invoices(
            conn, tenant_id, billing.InvoiceFilter(billing_run_id=run_id), limit=1
        )
        if not any_of_run:
            raise billing.NotFound(f"billing run {run_id} does not exist or drafted no invoice")
    return ids


async def _issue_in_chunks(
    conn: AsyncConnection[Any], ctx: ApiContext, principal: Principal, ids: list[int]
) -> dict[str, Any] | JSONResponse:
    issued: list[billing.Issued] = []
    for start in range(0, len(ids), ISSUE_CHUNK):
        chunk = ids[start : start + ISSUE_CHUNK]
        now = ctx.clock.now()
        try:
            async with conn.transaction():
                issued += await billing.issue_invoices(
                    conn,
                    principal.tenant_id,
                    principal.actor,
                    now,
                    chunk,
                    issue_date=local_today(ctx, now),
                )
        except (billing.NotFound, billing.Conflict, billing.InvalidValue) as failure:
            if not issued:
                raise
            status = 404 if isinstance(failure, billing.NotFound) else 409
            if isinstance(failure, billing.InvalidValue):
                status = 422
            field, _, reason = str(failure).partition(": ")
            if not reason:
                field, reason = "invoice_ids", str(failure)
            return JSONResponse(
                error_body(
                    field,
                    f"{reason} (the {len(issued)} invoices before it were issued)",
                    issued=issue_summary(issued),
                ),
                status_code=status,
            )
    return issue_summary(issued)
