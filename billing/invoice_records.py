"""What is kept beside an invoice, for the office's detail view."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection

from audit.log import jsonable


async def invoice_records(
    conn: AsyncConnection[Any], tenant_id: int, invoice_id: int
) -> dict[str, list[dict[str, Any]]]:
    """What is kept beside an invoice: its error notices, the buyer's agreements (without
    their content), the corrections referring to it and the e-invoice provider's last 50
    attempts, as JSON-ready rows. The caller has read the invoice (and checked its
    tenant)."""
    notices = await conn.execute(
        "SELECT id, action, reason, correcting_id, created_at, sent_at FROM invoice_error_notices"
        " WHERE tenant_id = %s AND invoice_id = %s ORDER BY id",
        (tenant_id, invoice_id),
    )
    agreements = await conn.execute(
        "SELECT id, signed_on, signed_by, filename, content_type, size_bytes, sha256, uploaded_at"
        " FROM invoice_agreements WHERE tenant_id = %s AND invoice_id = %s ORDER BY id",
        (tenant_id, invoice_id),
    )
    corrections = await conn.execute(
        "SELECT r.invoice_id, r.relation, i.status, i.template, i.symbol, i.number"
        " FROM invoice_references r JOIN invoices i ON i.id = r.invoice_id"
        " WHERE r.referenced_id = %s AND i.tenant_id = %s ORDER BY r.invoice_id",
        (invoice_id, tenant_id),
    )
    attempts = await conn.execute(
        "SELECT id, attempted_at, operation, outcome, detail FROM einvoice_attempts"
        " WHERE invoice_id = %s ORDER BY id DESC LIMIT 50",
        (invoice_id,),
    )
    return {
        "notices": _rows(notices.description, await notices.fetchall()),
        "agreements": _rows(agreements.description, await agreements.fetchall()),
        "corrected_by": _rows(corrections.description, await corrections.fetchall()),
        "einvoice_attempts": _rows(attempts.description, await attempts.fetchall()),
    }


def _rows(description: Sequence[Any] | None, rows: Sequence[tuple[Any, ...]]) -> list[Any]:
    names = [column.name for column in description or ()]
    return [jsonable(dict(zip(names, row, strict=True))) for row in rows]
