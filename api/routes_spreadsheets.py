"""The customer book as a spreadsheet: export it (CSV or XLSX) and import one from the page.

An import through the API runs in the request (a file of 20,000 rows takes a few seconds);
bigger books go through `sanitrack customers-import`, which prints its progress.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response

from api.context import Ctx, LocalDate
from api.routes_change_requests import read_body_up_to
from api.routes_customers import BookEditor, BookReader, local_today
from customers import importer, spreadsheets

router = APIRouter(prefix="/api/v1", tags=["customers"])

MAX_IMPORT_BYTES = 20 * 1024 * 1024
MAX_IMPORT_ROWS = 50_000
SHOWN_REJECTIONS = 1000
_SAFE_NAME = re.compile(r"^[^/\\\x00-\x1f]{1,200}\.(csv|xlsx)$", re.IGNORECASE)


@router.get(
    "/customers/export",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}, "application/octet-stream": {}}}},
)
async def export_book(
    principal: BookReader, ctx: Ctx, format: Literal["csv", "xlsx"] = "xlsx"
) -> Response:
    """Every service point with its customer, in the import's columns (Vietnamese headers):
    what is exported imports back as "unchanged"."""
    stream = io.BytesIO()
    writer = spreadsheets.sheet_writer(format, stream)
    async with ctx.pool.connection() as conn:
        async for row in importer.export_rows(conn, principal.tenant_id):
            writer.write(row)
    writer.close()
    today = local_today(ctx, ctx.clock.now())
    media = (
        "text/csv; charset=utf-8"
        if format == "csv"
        else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    return Response(
        stream.getvalue(),
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="so-khach-hang-{today}.{format}"',
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.post("/customers/import")
async def import_book(
    request: Request,
    principal: BookEditor,
    ctx: Ctx,
    filename: Annotated[str, Query(min_length=5, max_length=205)],
    effective_date: LocalDate | None = None,
) -> dict[str, Any]:
    """Import a spreadsheet sent as the request's body (``filename`` says CSV or XLSX).
    Good rows are kept; every rejected row is listed with its row number, column, value
    and reason (the first 1,000 here, all of them in the import's record). Changed billing
    terms apply from ``effective_date`` (default: today)."""
    if not _SAFE_NAME.match(filename):
        raise HTTPException(
            422, detail={"field": "filename", "reason": "a file name ending in .csv or .xlsx"}
        )
    data = await read_body_up_to(request, MAX_IMPORT_BYTES)
    if not data:
        raise HTTPException(422, detail={"field": "body", "reason": "the file is empty"})
    sheet = spreadsheets.read_sheet(data)
    if spreadsheets.format_of(filename) != sheet.format:
        raise HTTPException(
            422,
            detail={"field": "filename", "reason": f"the file holds {sheet.format}, not what"
                    " its name says"},
        )  # fmt: skip
    if sheet.total_rows > MAX_IMPORT_ROWS:
        raise HTTPException(
            413,
            detail={
                "field": "body",
                "reason": f"{sheet.total_rows:,} rows: import more than {MAX_IMPORT_ROWS:,}"
                " with `sanitrack customers-import`",
            },
        )
    now = ctx.clock.now()
    async with ctx.pool.connection() as conn, conn.transaction():
        report = await importer.import_rows(
            conn, principal.tenant_id, principal.actor, sheet, filename=filename,
            file_sha256=hashlib.sha256(data).hexdigest(), fmt=sheet.format, now=now,
            effective_date=effective_date or local_today(ctx, now),
        )  # fmt: skip
    return {
        "import_id": report.import_id,
        "rows_total": report.rows_total,
        "rows_created": report.rows_created,
        "rows_updated": report.rows_updated,
        "rows_unchanged": report.rows_unchanged,
        "rows_rejected": report.rows_rejected,
        "ignored_headers": list(report.ignored_headers),
        "rejections": [
            {
                "row": r.row_number,
                "field": r.field,
                "column": spreadsheets.HEADERS.get(r.field, r.field) if r.field else None,
                "value": r.value,
                "reason": r.reason,
            }
            for r in report.rejections[:SHOWN_REJECTIONS]
        ],
        "imported_at": now.astimezone(dt.UTC).isoformat(),
    }
