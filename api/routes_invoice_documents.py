"""Invoices on paper and to the tax authority, over HTTP: one invoice's PDF, print batches
(a list, or an area's, a collector's or a period's issued invoices, in walking order, every
print recorded), an invoice's prints, the collector's printed book, and sending an invoice
to the e-invoice provider again.

Roles as in ``api.routes_invoices``: the office reads an invoice's PDF and its prints;
printing a batch or a book (recorded, counted) and requeueing are admins' and accountants'.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

import billing
from api.context import MAX_ID, Ctx, LocalDate, ObjectId
from api.routes_billing import Accounting
from api.routes_customers import as_json
from api.routes_invoices import InvoiceReader, invoice_json
from billing import einvoice

if TYPE_CHECKING:
    # Drawing PDFs imports fpdf2 and its fonts (0.3 s): only when a PDF is asked for, not
    # in every process that serves the API or runs the ingest.
    from billing import printing

router = APIRouter(prefix="/api/v1", tags=["invoice documents"])

PDF_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/pdf": {}}, "description": "the PDF"}
}


class PrintRequest(BaseModel):
    """These issued invoices, or those of an area, a collector and/or a period."""

    model_config = ConfigDict(extra="forbid")

    invoice_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None = Field(
        None, min_length=1, max_length=20_000
    )
    area_id: int | None = Field(None, ge=1, le=MAX_ID)
    collector_staff_id: int | None = Field(None, ge=1, le=MAX_ID)
    period_start: LocalDate | None = None


class BookRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period_start: LocalDate


def pdf_response(pdf: bytes, filename: str, headers: dict[str, str] | None = None) -> Response:
    """A PDF as a download (never shown in the page's origin)."""
    quoted = urllib.parse.quote(filename, safe="")
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quoted}",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
            **(headers or {}),
        },
    )


def batch_headers(batch: printing.PrintBatch) -> dict[str, str]:
    return {
        "X-Print-Batch-Id": str(batch.id),
        "X-Invoice-Count": str(batch.invoice_count),
        "X-Reprints": str(batch.reprints),
        "X-Pages": str(batch.pages),
        "X-Content-SHA256": batch.sha256,
    }


@router.get("/invoices/{invoice_id}/pdf", response_class=Response, responses=PDF_RESPONSE)
async def invoice_pdf(invoice_id: ObjectId, principal: InvoiceReader, ctx: Ctx) -> Response:
    """The invoice as printed (a draft carries its mark); reading it is not a print."""
    async with ctx.pool.connection() as conn:
        (document,) = await billing.load_documents(conn, principal.tenant_id, [invoice_id])
    from billing.pdf import render_invoice

    pdf = await asyncio.to_thread(render_invoice, document, ctx.clock.now())
    invoice = document.invoice
    name = (
        f"hoa-don-{invoice.series_code}-{invoice.number_text}.pdf"
        if invoice.number is not None
        else f"hoa-don-nhap-{invoice.id}.pdf"
    )
    return pdf_response(pdf, name)


@router.post("/invoices/print", response_class=Response, responses=PDF_RESPONSE)
async def print_invoices(body: PrintRequest, principal: Accounting, ctx: Ctx) -> Response:
    """One PDF of the issued invoices asked for, in the collectors' walking order; every
    invoice's print is recorded (reprints counted, in ``X-Reprints``)."""
    from billing import printing

    now = ctx.clock.now()
    async with ctx.pool.connection() as conn, conn.transaction():
        batch = await printing.print_invoices(
            conn,
            principal.tenant_id,
            principal.actor,
            now,
            invoice_ids=body.invoice_ids,
            area_id=body.area_id,
            collector_staff_id=body.collector_staff_id,
            period_start=body.period_start,
        )
    return pdf_response(batch.pdf, f"in-hoa-don-{batch.id}.pdf", batch_headers(batch))


@router.get("/invoices/{invoice_id}/prints")
async def invoice_prints(
    invoice_id: ObjectId, principal: InvoiceReader, ctx: Ctx
) -> list[dict[str, Any]]:
    """Every print of the invoice, the first first."""
    from billing import printing

    async with ctx.pool.connection() as conn:
        records = await printing.print_history(conn, principal.tenant_id, invoice_id)
    return [as_json(r) for r in records]


@router.post("/collectors/{staff_id}/book/print", response_class=Response, responses=PDF_RESPONSE)
async def print_collector_book(
    staff_id: ObjectId, body: BookRequest, principal: Accounting, ctx: Ctx
) -> Response:
    """The collector's book for the period: every active point in walking order, with what
    its customer was invoiced."""
    from billing import printing

    now = ctx.clock.now()
    async with ctx.pool.connection() as conn, conn.transaction():
        batch = await printing.collector_book(
            conn, principal.tenant_id, staff_id, body.period_start, principal.actor, now
        )
    name = f"so-thu-{staff_id}-{body.period_start.isoformat()}.pdf"
    return pdf_response(batch.pdf, name, batch_headers(batch))


@router.post("/invoices/{invoice_id}/requeue")
async def requeue_invoice(invoice_id: ObjectId, principal: Accounting, ctx: Ctx) -> dict[str, Any]:
    """Send again, now, an invoice the provider rejected or that ran out of attempts; 409
    when it has nothing left to send."""
    async with ctx.pool.connection() as conn, conn.transaction():
        await einvoice.requeue(conn, principal.tenant_id, invoice_id, ctx.clock.now())
        return invoice_json(await billing.get_invoice(conn, principal.tenant_id, invoice_id))
