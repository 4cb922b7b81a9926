"""The revenue report over HTTP: what the company invoiced over a date range, grouped by
service, area, customer class, collector and/or month, with the amounts of each VAT rate;
as JSON, or as the accountant's XLSX workbook. Admins' and accountants' to read."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from api.context import Ctx, LocalDate
from api.routes_billing import Accounting
from billing.revenue import RevenueBasis, RevenueGroup, RevenueReport, RevenueRow, revenue_report
from billing.revenue_export import revenue_xlsx

router = APIRouter(prefix="/api/v1", tags=["revenue"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
GroupBy = Annotated[
    list[RevenueGroup], Query(max_length=5, description="groups, in the order of the columns")
]


def row_json(row: RevenueRow) -> dict[str, Any]:
    return {
        "keys": list(row.keys),
        "labels": list(row.labels),
        "invoices": row.invoices,
        "lines": row.lines,
        "amount_vnd": row.amount_vnd,
        "vat_vnd": row.vat_vnd,
        "total_vnd": row.total_vnd,
        "by_vat_rate": {
            rate: {"amount_vnd": a.amount_vnd, "vat_vnd": a.vat_vnd, "total_vnd": a.total_vnd}
            for rate, a in row.by_vat_rate.items()
        },
        "paid_vnd": row.paid_vnd,
        "outstanding_vnd": row.outstanding_vnd,
    }


def report_json(report: RevenueReport) -> dict[str, Any]:
    return {
        "company": report.company,
        "date_from": report.date_from.isoformat(),
        "date_to": report.date_to.isoformat(),
        "basis": str(report.basis),
        "group_by": [str(g) for g in report.group_by],
        "vat_rates": report.vat_rates,
        "rows": [row_json(r) for r in report.rows],
        "total": row_json(report.total),
        "drafts_vnd": report.drafts_vnd,
        "draft_invoices": report.draft_invoices,
        "payments_known": report.payments_known,
    }


async def _report(
    ctx: Ctx,
    tenant_id: int,
    date_from: dt.date,
    date_to: dt.date,
    basis: RevenueBasis,
    group_by: list[RevenueGroup],
) -> RevenueReport:
    async with ctx.pool.connection() as conn:
        return await revenue_report(
            conn, tenant_id, date_from=date_from, date_to=date_to, basis=basis, group_by=group_by
        )


@router.get("/billing/revenue")
async def revenue(
    principal: Accounting,
    ctx: Ctx,
    date_from: Annotated[LocalDate, Query()],
    date_to: Annotated[LocalDate, Query(description="included; at most 366 days in all")],
    basis: RevenueBasis = RevenueBasis.ISSUE_DATE,
    group_by: GroupBy = [],  # noqa: B006 (FastAPI copies a default)
) -> dict[str, Any]:
    """``issue_date``: invoices issued in the range (accounting revenue);
    ``service_period``: lines whose service period starts in the range. Drafts apart."""
    report = await _report(ctx, principal.tenant_id, date_from, date_to, basis, group_by)
    return report_json(report)


@router.get(
    "/billing/revenue.xlsx",
    response_class=Response,
    responses={200: {"content": {XLSX: {}}, "description": "the workbook"}},
)
async def revenue_workbook(
    principal: Accounting,
    ctx: Ctx,
    date_from: Annotated[LocalDate, Query()],
    date_to: Annotated[LocalDate, Query()],
    basis: RevenueBasis = RevenueBasis.ISSUE_DATE,
    group_by: GroupBy = [],  # noqa: B006 (FastAPI copies a default)
) -> Response:
    """The same report as a workbook: a sheet of revenue, a sheet of VAT."""
    report = await _report(ctx, principal.tenant_id, date_from, date_to, basis, group_by)
    workbook = await asyncio.to_thread(revenue_xlsx, report)
    name = f"doanh-thu-{date_from.isoformat()}-{date_to.isoformat()}.xlsx"
    return Response(
        workbook,
        media_type=XLSX,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )
