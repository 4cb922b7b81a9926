"""Issuing: a draft gets its number, its issue date and time and the seller as they are
now, in one transaction under the lock of its series (billing.series.take_numbers).

Issuing an adjustment marks what it adjusts ``adjusted``; issuing a replacement marks the
original ``replaced`` and takes its charges over. Both need the business buyer's written
agreement on file first (Decree 70/2025) and leave a notice record (form 04/SS-HĐĐT).
Issued invoices are queued for the e-invoice provider (billing.einvoice).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

import audit
from billing.errors import Conflict, NotFound
from billing.invoice_models import InvoiceKind, InvoiceStatus
from billing.invoices import require_seller, seller_json
from billing.series import take_numbers

# Buyers who must agree in writing before their invoice is adjusted or replaced.
BUSINESS_KINDS = frozenset({"business", "agency", "business_household"})


@dataclass(frozen=True, slots=True)
class Issued:
    invoice_id: int
    template: str
    symbol: str
    number: int
    issue_date: dt.date
    issued_at: dt.datetime
    total_vnd: int


async def _lock_drafts(
    conn: AsyncConnection[Any], tenant_id: int, invoice_ids: Sequence[int]
) -> list[tuple[Any, ...]]:
    cursor = await conn.execute(
        "SELECT id, series_id, status, kind, customer_id, total_vnd, buyer_kind, buyer_tax_code,"
        " (SELECT count(*) FROM invoice_lines l WHERE l.invoice_id = i.id),"
        " EXISTS (SELECT 1 FROM invoice_agreements a WHERE a.invoice_id = i.id)"
        " FROM invoices i WHERE tenant_id = %s AND id = ANY(%s) ORDER BY id FOR UPDATE",
        (tenant_id, list(invoice_ids)),
    )
    rows = await cursor.fetchall()
    found = {row[0] for row in rows}
    for invoice_id in invoice_ids:
        if invoice_id not in found:
            raise NotFound(f"invoice {invoice_id} does not exist")
    for row in rows:
        invoice_id, status, kind, lines = row[0], row[2], row[3], row[8]
        if status != InvoiceStatus.DRAFT:
            raise Conflict(f"invoice_id: invoice {invoice_id} is already {status}")
        if lines == 0:
            raise Conflict(f"invoice_id: invoice {invoice_id} has no line")
        needs_agreement = row[6] in BUSINESS_KINDS or row[7] is not None
        if kind != InvoiceKind.ORIGINAL and needs_agreement and not row[9]:
            raise Conflict(
                f"agreement: invoice {invoice_id} corrects a business buyer's invoice;"
                " attach the buyer's written agreement before issuing it"
            )
    return list(rows)


async def _take_charges(conn: AsyncConnection[Any], tenant_id: int, invoice_ids: list[int]) -> None:
    """The charges the lines bill are invoiced from now on: charge runs leave them alone.
    Conflict when another invoice took one meanwhile."""
    cursor = await conn.execute(
        "WITH billed AS (SELECT l.invoice_id, unnest(l.charge_ids) AS charge_id"
        " FROM invoice_lines l WHERE l.invoice_id = ANY(%s))"
        " UPDATE charges c SET invoice_id = b.invoice_id FROM billed b"
        " WHERE c.id = b.charge_id AND c.tenant_id = %s AND c.invoice_id IS NULL",
        (invoice_ids, tenant_id),
    )
    taken = cursor.rowcount
    cursor = await conn.execute(
        "SELECT coalesce(sum(cardinality(charge_ids)), 0) FROM invoice_lines"
        " WHERE invoice_id = ANY(%s)",
        (invoice_ids,),
    )
    row = await cursor.fetchone()
    if row is not None and taken != row[0]:
        raise Conflict(
            "invoice_id: a charge on these drafts is already on another invoice;"
            " run the billing period again"
        )


async def _apply_corrections(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    now: dt.datetime,
    correcting: list[int],
) -> list[audit.Change]:
    """Mark what the issued corrections adjust or replace; record their notices."""
    cursor = await conn.execute(
        "SELECT r.invoice_id, r.referenced_id, r.relation, o.status, o.customer_id,"
        " c.correction_reason FROM invoice_references r"
        " JOIN invoices o ON o.id = r.referenced_id JOIN invoices c ON c.id = r.invoice_id"
        " WHERE r.invoice_id = ANY(%s) ORDER BY r.referenced_id FOR UPDATE OF o",
        (correcting,),
    )
    changes = []
    for invoice_id, referenced_id, relation, status, customer_id, reason in await cursor.fetchall():
        if status in (InvoiceStatus.CANCELLED, InvoiceStatus.REPLACED, InvoiceStatus.DRAFT):
            raise Conflict(
                f"invoice_id: invoice {referenced_id}, which invoice {invoice_id} corrects,"
                f" is {status}"
            )
        new_status = InvoiceStatus.REPLACED if relation == "replaces" else InvoiceStatus.ADJUSTED
        await conn.execute(
            "UPDATE invoices SET status = %s, next_send_at = NULL, updated_at = %s,"
            " revision = revision + 1 WHERE id = %s",
            (new_status, now, referenced_id),
        )
        if relation == "replaces":
            await conn.execute(
                "UPDATE charges SET invoice_id = %s WHERE tenant_id = %s AND invoice_id = %s",
                (invoice_id, tenant_id, referenced_id),
            )
        await conn.execute(
            "INSERT INTO invoice_error_notices (tenant_id, invoice_id, action, reason,"
            " correcting_id, created_by, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                tenant_id,
                referenced_id,
                "replace" if relation == "replaces" else "adjust",
                reason or "điều chỉnh",
                invoice_id,
                actor.user_id,
                now,
            ),
        )
        changes.append(
            audit.Change(
                "invoice",
                referenced_id,
                str(new_status),
                {"status": str(status)},
                {"status": str(new_status), "by_invoice_id": invoice_id},
                customer_id=customer_id,
            )
        )
    if correcting:
        await conn.execute(
            "UPDATE adjustment_proposals SET status = 'accepted', decided_at = coalesce("
            "decided_at, %s) WHERE adjustment_invoice_id = ANY(%s) AND status = 'proposed'",
            (now, correcting),
        )
    return changes


async def issue_invoices(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    now: dt.datetime,
    invoice_ids: Sequence[int],
    *,
    issue_date: dt.date,
) -> list[Issued]:
    """Issue drafts in the order given: each series' numbers follow that order. In the
    caller's transaction, which holds the series' lock until it ends; ``issue_date`` is the
    company's date of ``now``. Conflict when one of them is not a draft, has no line, or
    corrects a business buyer's invoice without the buyer's agreement: nothing is issued."""
    ids = list(dict.fromkeys(invoice_ids))
    if not ids:
        return []
    rows = await _lock_drafts(conn, tenant_id, ids)
    seller = await require_seller(conn, tenant_id)
    by_id = {row[0]: row for row in rows}
    by_series: dict[int, list[int]] = {}
    for invoice_id in ids:
        by_series.setdefault(by_id[invoice_id][1], []).append(invoice_id)
    issued: list[Issued] = []
    for series_id in sorted(by_series):
        members = by_series[series_id]
        series, first, issued_at = await take_numbers(
            conn, tenant_id, series_id, len(members), issue_date, now
        )
        numbers = list(range(first, first + len(members)))
        await conn.execute(
            "UPDATE invoices i SET status = 'issued', series_id = %(series)s,"
            " template = %(template)s, symbol = %(symbol)s, number = v.number,"
            " issue_date = %(date)s, issued_at = %(at)s, issued_by = %(user)s,"
            " seller_tax_code = %(tax)s, seller = %(seller)s, next_send_at = %(at)s,"
            " updated_at = %(at)s, revision = revision + 1"
            " FROM unnest(%(ids)s::bigint[], %(numbers)s::integer[]) AS v(id, number)"
            " WHERE i.id = v.id",
            {
                "series": series.id,
                "template": series.template,
                "symbol": series.symbol,
                "date": issue_date,
                "at": issued_at,
                "user": actor.user_id,
                "tax": seller.tax_code,
                "seller": seller_json(seller),
                "ids": members,
                "numbers": numbers,
            },
        )
        issued += [
            Issued(
                invoice_id,
                series.template,
                series.symbol,
                number,
                issue_date,
                issued_at,
                by_id[invoice_id][5],
            )
            for invoice_id, number in zip(members, numbers, strict=True)
        ]
    originals = [i for i in ids if by_id[i][3] == InvoiceKind.ORIGINAL]
    await _take_charges(conn, tenant_id, originals)
    correcting = [i for i in ids if by_id[i][3] != InvoiceKind.ORIGINAL]
    changes = await _apply_corrections(conn, tenant_id, actor, now, correcting)
    changes += [
        audit.Change(
            "invoice",
            item.invoice_id,
            "issue",
            {"status": "draft"},
            {
                "status": "issued",
                "series": item.template + item.symbol,
                "number": item.number,
                "issue_date": item.issue_date.isoformat(),
                "total_vnd": item.total_vnd,
            },
            customer_id=by_id[item.invoice_id][4],
        )
        for item in issued
    ]
    await audit.record_many(conn, tenant_id, actor, now, changes)
    return issued
