"""Correcting and delivering invoices over HTTP, the ways the law allows (domain-billing
"E-invoices" §6): cancel before delivery, a notice when only the buyer's name or address
was wrong, a replacement or an adjustment (drafted here, issued like any draft), the
business buyer's written agreement to it, delivery, and the adjustments the charge runs
propose after a change back into an invoiced period.

Roles as in ``api.routes_invoices``: the office reads, admins and accountants write.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from psycopg import AsyncConnection
from pydantic import BaseModel, ConfigDict, Field

import billing
import customers
from api.context import MAX_ID, Ctx, LocalDate, ObjectId
from api.routes_billing import Accounting
from api.routes_change_requests import read_body_up_to
from api.routes_customers import as_json
from api.routes_invoices import InvoiceReader, OptionalId, invoice_detail, invoice_json

router = APIRouter(prefix="/api/v1", tags=["invoice corrections"])

MAX_AGREEMENT_BYTES = 20 * 1024 * 1024  # as invoice_agreements.size_bytes allows
_MEDIA_TYPE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}$"
)
ProposalIds = list[Annotated[int, Field(ge=1, le=MAX_ID)]]


# ---------------------------------------------------------------- bodies


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)


class Delivery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Literal["email", "print", "portal", "handover"]


class ProposalDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    proposal_ids: ProposalIds = Field(min_length=1, max_length=10_000)
    reason: str = Field(min_length=1, max_length=2000)


class ProposalDismissal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    proposal_ids: ProposalIds = Field(min_length=1, max_length=10_000)


# ---------------------------------------------------------------- corrections


@router.post("/invoices/{invoice_id}/cancel")
async def cancel_invoice(
    invoice_id: ObjectId, body: Reason, principal: Accounting, ctx: Ctx
) -> dict[str, Any]:
    """Cancel an issued invoice that has not reached the buyer (notice 04/SS-HĐĐT); its
    charges are billed again by the next run, on a new number. 409 after delivery."""
    async with ctx.pool.connection() as conn, conn.transaction():
        invoice = await billing.cancel_invoice(
            conn, principal.tenant_id, principal.actor, ctx.clock.now(), invoice_id, body.reason
        )
    return invoice_json(invoice)


@router.post("/invoices/{invoice_id}/explain", status_code=201)
async def explain_invoice(
    invoice_id: ObjectId, body: Reason, principal: Accounting, ctx: Ctx
) -> dict[str, Any]:
    """Only the buyer's name or address was wrong: a notice, no new invoice."""
    async with ctx.pool.connection() as conn, conn.transaction():
        notice_id = await billing.explain_invoice(
            conn, principal.tenant_id, principal.actor, ctx.clock.now(), invoice_id, body.reason
        )
    return {"notice_id": notice_id, "invoice_id": invoice_id}


@router.post("/invoices/{invoice_id}/replacement", status_code=201)
async def draft_replacement(
    invoice_id: ObjectId, body: billing.NewReplacement, principal: Accounting, ctx: Ctx
) -> dict[str, Any]:
    """Draft the replacement of an issued invoice (its lines unless others are given, the
    buyer with ``buyer``'s changes); the original is marked replaced when it is issued."""
    async with ctx.pool.connection() as conn, conn.transaction():
        draft_id = await billing.draft_replacement(
            conn, principal.tenant_id, principal.actor, ctx.clock.now(), invoice_id, body
        )
        return await invoice_detail(conn, principal.tenant_id, draft_id)


@router.post("/invoice-adjustments", status_code=201)
async def draft_adjustment(
    body: billing.NewAdjustment, principal: Accounting, ctx: Ctx
) -> dict[str, Any]:
    """Draft an adjustment (lines may be negative) of one issued invoice, or of several of
    one buyer issued in one month (list form 01/BK-ĐCTT)."""
    async with ctx.pool.connection() as conn, conn.transaction():
        draft_id = await billing.draft_adjustment(
            conn, principal.tenant_id, principal.actor, ctx.clock.now(), body
        )
        return await invoice_detail(conn, principal.tenant_id, draft_id)


@router.post(
    "/invoices/{invoice_id}/agreement",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "the signed agreement's file; its type in Content-Type",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def attach_agreement(
    invoice_id: ObjectId,
    request: Request,
    principal: Accounting,
    ctx: Ctx,
    filename: Annotated[str, Query(min_length=1, max_length=255, description="the file's name")],
    signed_on: Annotated[LocalDate, Query(description="the day the buyer signed")],
    signed_by: Annotated[str, Query(min_length=1, max_length=200, description="who signed")],
) -> dict[str, Any]:
    """Keep the business buyer's written agreement to a correction (Decree 70/2025), needed
    before it is issued: the request body is the file, up to 20 MiB, as for a change
    request's evidence."""
    if any(ord(c) < 32 or c in "/\\" for c in filename):
        raise HTTPException(
            422,
            detail={
                "field": "filename",
                "reason": "a bare file name, without / \\ or control characters",
            },
        )
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    content_type = content_type or "application/octet-stream"
    if not _MEDIA_TYPE.match(content_type):
        raise HTTPException(
            422,
            detail={
                "field": "content-type",
                "reason": f"{content_type[:100]!r} is not a media type",
            },
        )
    content = await read_body_up_to(request, MAX_AGREEMENT_BYTES)
    if not content:
        raise HTTPException(422, detail={"field": "body", "reason": "the file is empty"})
    async with ctx.pool.connection() as conn, conn.transaction():
        agreement = await billing.attach_agreement(
            conn,
            principal.tenant_id,
            principal.actor,
            ctx.clock.now(),
            invoice_id,
            signed_on=signed_on,
            signed_by=signed_by,
            filename=filename,
            content_type=content_type,
            content=content,
        )
    return as_json(agreement)


@router.post("/invoices/{invoice_id}/deliver")
async def mark_delivered(
    invoice_id: ObjectId, body: Delivery, principal: Accounting, ctx: Ctx
) -> dict[str, Any]:
    """The invoice reached the buyer (by e-mail: sent through the outbox). One with the tax
    authority's code (symbol C) only once coded (409 before)."""
    async with ctx.pool.connection() as conn, conn.transaction():
        invoice = await billing.mark_delivered(
            conn, principal.tenant_id, principal.actor, ctx.clock.now(), invoice_id, body.channel
        )
    return invoice_json(invoice)


# ---------------------------------------------------------------- adjustment proposals


async def _with_customer_names(
    conn: AsyncConnection[Any], tenant_id: int, proposals: list[billing.Proposal]
) -> list[dict[str, Any]]:
    """Proposals as JSON, each with its customer's code and name. One lookup per customer:
    a page of proposals names few customers."""
    named: dict[int, customers.Customer] = {}
    for customer_id in dict.fromkeys(p.customer_id for p in proposals):
        named[customer_id] = await customers.get_customer(conn, tenant_id, customer_id)
    return [
        {
            **as_json(p),
            "difference_vnd": p.difference_vnd,
            "customer_code": named[p.customer_id].code,
            "customer_name": named[p.customer_id].name,
        }
        for p in proposals
    ]


@router.get("/adjustment-proposals")
async def list_proposals(
    principal: InvoiceReader,
    ctx: Ctx,
    status: Literal["proposed", "accepted", "dismissed", "superseded"] = "proposed",
    customer_id: OptionalId = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> list[dict[str, Any]]:
    """What the charge runs propose to adjust on issued invoices, by customer and period."""
    async with ctx.pool.connection() as conn:
        found = await billing.list_proposals(
            conn, principal.tenant_id, status=status, customer_id=customer_id, limit=limit
        )
        return await _with_customer_names(conn, principal.tenant_id, found)


@router.post("/adjustment-proposals/accept", status_code=201)
async def accept_proposals(
    body: ProposalDecision, principal: Accounting, ctx: Ctx
) -> dict[str, Any]:
    """Draft the adjustments of the proposals: one per buyer and month of issue. The
    drafts, to be issued; the proposals are accepted when they are."""
    async with ctx.pool.connection() as conn, conn.transaction():
        drafts = await billing.accept_proposals(
            conn,
            principal.tenant_id,
            principal.actor,
            ctx.clock.now(),
            list(dict.fromkeys(body.proposal_ids)),
            body.reason,
        )
        invoices = [await billing.get_invoice(conn, principal.tenant_id, d) for d in drafts]
    return {"adjustment_invoices": [invoice_json(i) for i in invoices]}


@router.post("/adjustment-proposals/dismiss")
async def dismiss_proposals(
    body: ProposalDismissal, principal: Accounting, ctx: Ctx
) -> dict[str, Any]:
    """Dismiss open proposals. 404, and nothing dismissed, when one of them is not an open
    proposal of the company (missing, another company's, decided or drafted already)."""
    wanted = list(dict.fromkeys(body.proposal_ids))
    async with ctx.pool.connection() as conn, conn.transaction():
        dismissed = await billing.dismiss_proposals(
            conn, principal.tenant_id, principal.actor, ctx.clock.now(), wanted
        )
        if dismissed != len(wanted):
            raise billing.NotFound(
                f"{len(wanted) - dismissed} of the adjustment proposals are not open"
                " proposals of this company; nothing was dismissed"
            )
    return {"dismissed": dismissed}
