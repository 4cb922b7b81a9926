"""Change requests over HTTP: list, submit, evidence files, approve, reject, cancel.

Who may do what is the customer book's (``api.routes_customers``): the book's readers read
requests and their evidence; its editors submit, cancel and add evidence; approvers
approve or reject, never a request they submitted (four eyes, kept by
``customers.changes``). Every write runs in one transaction with its audit entries.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from psycopg import AsyncConnection
from pydantic import BaseModel, ConfigDict, Field

import billing
import customers
from api.context import MAX_ID, Ctx, LocalDate, ObjectId
from api.routes_customers import (
    Approver,
    BookEditor,
    BookReader,
    Limit,
    Offset,
    OptionalId,
    as_json,
    geocoder,
    local_today,
)
from customers import changes

router = APIRouter(prefix="/api/v1", tags=["change requests"])

MAX_EVIDENCE_BYTES = 20 * 1024 * 1024  # as change_request_evidence.size_bytes allows
_MEDIA_TYPE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}$"
)


# ---------------------------------------------------------------- bodies


class NewChangeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: int = Field(ge=1, le=MAX_ID)
    service_point_id: int | None = Field(None, ge=1, le=MAX_ID)
    changes: dict[str, Any] = Field(min_length=1, max_length=30)
    reason: str = Field(min_length=1, max_length=2000)
    effective_date: LocalDate


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field("", max_length=2000)


async def _with_customer_names(
    conn: AsyncConnection[Any], tenant_id: int, requests: list[changes.ChangeRequest]
) -> list[dict[str, Any]]:
    """Requests as JSON, each with its customer's code and name (what an approver reads
    first). One lookup per customer: a page of requests names few customers."""
    named: dict[int, customers.Customer] = {}
    for customer_id in dict.fromkeys(r.customer_id for r in requests):
        named[customer_id] = await customers.get_customer(conn, tenant_id, customer_id)
    return [
        {
            **as_json(r),
            "customer_code": named[r.customer_id].code,
            "customer_name": named[r.customer_id].name,
        }
        for r in requests
    ]


@router.get("/change-requests")
async def list_change_requests(
    principal: BookReader,
    ctx: Ctx,
    status: changes.RequestStatus | None = None,
    customer_id: OptionalId = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[dict[str, Any]]:
    async with ctx.pool.connection() as conn:
        found = await changes.list_requests(
            conn,
            principal.tenant_id,
            status=status,
            customer_id=customer_id,
            limit=limit,
            offset=offset,
        )
        return await _with_customer_names(conn, principal.tenant_id, found)


@router.post("/change-requests", status_code=201)
async def submit_change_request(
    body: NewChangeRequest, principal: BookEditor, ctx: Ctx
) -> dict[str, Any]:
    """Ask for a change of what a customer or point is billed on (số khẩu, volume, class,
    status...), from ``effective_date``; it applies once another person approves it."""
    async with ctx.pool.connection() as conn, conn.transaction():
        request = await changes.submit(
            conn,
            principal.tenant_id,
            principal.actor,
            ctx.clock.now(),
            customer_id=body.customer_id,
            service_point_id=body.service_point_id,
            changes=body.changes,
            reason=body.reason,
            effective_date=body.effective_date,
            via="office",
        )
    return as_json(request)


@router.get("/change-requests/{request_id}")
async def get_change_request(
    request_id: ObjectId, principal: BookReader, ctx: Ctx
) -> dict[str, Any]:
    """The request and its evidence files (their names, types, sizes and hashes)."""
    async with ctx.pool.connection() as conn:
        request = await changes.get_request(conn, principal.tenant_id, request_id)
        files = await changes.evidence_of(conn, principal.tenant_id, request_id)
    return {**as_json(request), "evidence": [as_json(e) for e in files]}


@router.post(
    "/change-requests/{request_id}/evidence",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "the file itself; its type in Content-Type",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def add_evidence(
    request_id: ObjectId,
    request: Request,
    principal: BookEditor,
    ctx: Ctx,
    filename: Annotated[str, Query(min_length=1, max_length=255, description="the file's name")],
) -> dict[str, Any]:
    """Attach a file (a photo of the household registration, a contract scan) to a request:
    the request body is the file, up to 20 MiB."""
    if any(ord(c) < 32 or c in "/\\" for c in filename):
        raise HTTPException(
            422,
            detail={
                "field": "filename",
                "reason": "a bare file name, without / \\ or control characters",
            },
        )
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not content_type:
        content_type = "application/octet-stream"
    if not _MEDIA_TYPE.match(content_type):
        raise HTTPException(
            422,
            detail={
                "field": "content-type",
                "reason": f"{content_type[:100]!r} is not a media type",
            },
        )
    content = await read_body_up_to(request, MAX_EVIDENCE_BYTES)
    if not content:
        raise HTTPException(422, detail={"field": "body", "reason": "the file is empty"})
    async with ctx.pool.connection() as conn, conn.transaction():
        evidence = await changes.add_evidence(
            conn,
            principal.tenant_id,
            principal.actor,
            ctx.clock.now(),
            request_id,
            filename,
            content_type,
            content,
        )
    return as_json(evidence)


async def read_body_up_to(request: Request, limit: int) -> bytes:
    too_big = HTTPException(
        413, detail={"field": "body", "reason": f"a file may have at most {limit} bytes"}
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


@router.get(
    "/change-requests/{request_id}/evidence/{evidence_id}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "the file"}},
)
async def get_evidence(
    request_id: ObjectId,
    evidence_id: ObjectId,
    principal: BookReader,
    ctx: Ctx,
) -> Response:
    """The file as uploaded, as a download (never shown in the page's origin)."""
    async with ctx.pool.connection() as conn:
        try:
            evidence = await changes.get_evidence(
                conn, principal.tenant_id, request_id, evidence_id
            )
        except changes.EvidenceCorrupt as corrupt:
            # Not the client's doing: the stored file changed after upload (logged there).
            raise HTTPException(500, detail={"field": None, "reason": str(corrupt)}) from None
    quoted = urllib.parse.quote(evidence.filename, safe="")
    return Response(
        bytes(evidence.content),
        media_type=evidence.content_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quoted}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, no-store",
            "X-Evidence-SHA256": evidence.sha256,
        },
    )


@router.post("/change-requests/{request_id}/approve")
async def approve_change_request(
    request_id: ObjectId, body: Decision, principal: Approver, ctx: Ctx
) -> dict[str, Any]:
    """Approve a request someone else submitted; it applies at once (from its effective
    date) and the charges it touches are recomputed."""
    now = ctx.clock.now()
    async with ctx.pool.connection() as conn, conn.transaction():
        request = await changes.approve(
            conn,
            principal.tenant_id,
            principal.actor,
            now,
            request_id,
            body.note,
            today=local_today(ctx, now),
            on_terms_changed=billing.recompute_on_terms_change(now),
            geocoder=geocoder(ctx),
            allow_self_approval=ctx.customers.allow_self_approval,
        )
    return as_json(request)


@router.post("/change-requests/{request_id}/reject")
async def reject_change_request(
    request_id: ObjectId, body: Decision, principal: Approver, ctx: Ctx
) -> dict[str, Any]:
    async with ctx.pool.connection() as conn, conn.transaction():
        request = await changes.reject(
            conn, principal.tenant_id, principal.actor, ctx.clock.now(), request_id, body.note
        )
    return as_json(request)


@router.post("/change-requests/{request_id}/cancel")
async def cancel_change_request(
    request_id: ObjectId, body: Decision, principal: BookEditor, ctx: Ctx
) -> dict[str, Any]:
    async with ctx.pool.connection() as conn, conn.transaction():
        request = await changes.cancel(
            conn, principal.tenant_id, principal.actor, ctx.clock.now(), request_id, body.note
        )
    return as_json(request)
