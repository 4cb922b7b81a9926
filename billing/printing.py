"""Printing: batches of issued invoices in the order their collector walks, every print
recorded (the first print, then reprints counted), and the collector's book.

Every function takes an open connection; the caller owns the transaction. A batch is
loaded and drawn a chunk at a time in a worker thread, so that 10,000 invoices neither
hold every document in memory at once nor stall the event loop; the invoices' rows are
locked only at the end, to record the prints.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

import audit
import customers
import fleet
from billing.errors import InvalidValue, NotFound
from billing.invoice_models import InvoiceStatus
from billing.invoices import InvoiceFilter, get_invoice, get_seller, invoice_ids, load_documents
from billing.pdf import BookRow, CollectorBook, InvoiceRenderer, RenderedPdf
from billing.pdf import render_collector_book as render_book
from billing.pdf.formats import local_date, period_text

Progress = Callable[[int, int], None]  # (invoices drawn, invoices in the batch)

CHUNK_INVOICES = 500  # loaded and drawn at a time
# Not handed to customers: a draft has no number; a cancelled or replaced invoice is void.
NOT_DELIVERED = (InvoiceStatus.DRAFT, InvoiceStatus.CANCELLED, InvoiceStatus.REPLACED)


@dataclass(frozen=True, slots=True)
class PrintBatch:
    id: int
    kind: str  # invoices | collector_book
    invoice_count: int
    reprints: int  # invoices printed before this batch
    pages: int
    sha256: str
    pdf: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class PrintRecord:
    print_no: int  # 1: the first print; more: reprints
    printed_at: dt.datetime
    printed_by: int | None
    batch_id: int | None


# The collector's walk: grouped by the area and collector of the invoice's first line with a
# service point, then that point's place in the collector's book, then the customer's code.
_WALK_ORDER = """
SELECT i.id FROM invoices i
LEFT JOIN LATERAL (
    SELECT p.area_id, p.collector_staff_id, p.book_order
    FROM invoice_lines l JOIN service_points p ON p.id = l.service_point_id
    WHERE l.invoice_id = i.id ORDER BY l.line_no LIMIT 1
) first_point ON true
WHERE i.tenant_id = %(tenant)s AND i.id = ANY(%(ids)s) AND NOT i.status = ANY(%(skip)s)
ORDER BY first_point.area_id NULLS LAST, first_point.collector_staff_id NULLS LAST,
         first_point.book_order NULLS LAST, i.buyer_code, i.id
"""


async def _scope_ids(
    conn: AsyncConnection[Any],
    tenant_id: int,
    invoice_ids_given: Sequence[int] | None,
    scope_filter: InvoiceFilter | None,
) -> list[int]:
    """The invoices to print, in walking order. Listed invoices must all exist in this
    tenant (NotFound otherwise) and none be a draft; a filter leaves out the drafts and the
    void ones."""
    if invoice_ids_given is not None:
        ids = list(dict.fromkeys(invoice_ids_given))
        cursor = await conn.execute(
            "SELECT id, status FROM invoices WHERE tenant_id = %s AND id = ANY(%s)",
            (tenant_id, ids),
        )
        status = {int(row[0]): row[1] for row in await cursor.fetchall()}
        for invoice_id in ids:
            if invoice_id not in status:
                raise NotFound(f"invoice {invoice_id} does not exist")
            if status[invoice_id] == InvoiceStatus.DRAFT:
                raise InvalidValue(
                    f"invoice_ids: invoice {invoice_id} is a draft; a draft has no number"
                    " and is not printed for customers (issue it first)"
                )
        skip = [str(InvoiceStatus.DRAFT)]
    else:
        assert scope_filter is not None
        ids = await invoice_ids(conn, tenant_id, scope_filter)
        skip = [str(s) for s in NOT_DELIVERED]
    cursor = await conn.execute(_WALK_ORDER, {"tenant": tenant_id, "ids": ids, "skip": skip})
    ordered = [int(row[0]) for row in await cursor.fetchall()]
    if not ordered:
        cursor = await conn.execute(
            "SELECT count(*) FROM invoices WHERE id = ANY(%s) AND status = 'draft'", (ids,)
        )
        drafts = await cursor.fetchone()
        assert drafts is not None
        hint = f" ({drafts[0]} drafts: issue them first)" if drafts[0] else ""
        raise InvalidValue(f"scope: no issued invoice to print{hint}")
    return ordered


def _scope(
    invoice_ids_given: Sequence[int] | None,
    area_id: int | None,
    collector_staff_id: int | None,
    period_start: dt.date | None,
) -> tuple[dict[str, Any], InvoiceFilter | None]:
    """The batch's scope as recorded, and the filter it selects by (None: a list)."""
    filtered = area_id is not None or collector_staff_id is not None or period_start is not None
    if invoice_ids_given is not None:
        if filtered:
            raise InvalidValue("scope: give invoice_ids or an area, collector or period, not both")
        if not invoice_ids_given:
            raise InvalidValue("invoice_ids: the list is empty")
        return {"invoice_ids": list(dict.fromkeys(invoice_ids_given))}, None
    if not filtered:
        raise InvalidValue("scope: give invoice_ids, or an area, a collector or a period")
    scope: dict[str, Any] = {}
    if area_id is not None:
        scope["area_id"] = area_id
    if collector_staff_id is not None:
        scope["collector_staff_id"] = collector_staff_id
    if period_start is not None:
        scope["period_start"] = period_start.isoformat()
    return scope, InvoiceFilter(
        area_id=area_id, collector_staff_id=collector_staff_id, period_start=period_start
    )


async def _render(
    conn: AsyncConnection[Any],
    tenant_id: int,
    ids: Sequence[int],
    now: dt.datetime,
    progress: Progress | None,
) -> RenderedPdf:
    renderer = InvoiceRenderer(created_at=now)
    try:
        for start in range(0, len(ids), CHUNK_INVOICES):
            chunk = ids[start : start + CHUNK_INVOICES]
            documents = await load_documents(conn, tenant_id, chunk)
            await asyncio.to_thread(renderer.add, documents)
            if progress is not None:
                progress(renderer.count, len(ids))
        return await asyncio.to_thread(renderer.finish)
    finally:
        renderer.close()


async def _record_batch(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    now: dt.datetime,
    kind: str,
    scope: dict[str, Any],
    invoice_count: int,
    rendered: RenderedPdf,
) -> tuple[int, str]:
    """The print_batches row, audited; its id and the file's SHA-256."""
    sha256 = hashlib.sha256(rendered.pdf).hexdigest()
    cursor = await conn.execute(
        "INSERT INTO print_batches (tenant_id, kind, scope, invoice_count, pages, size_bytes,"
        " sha256, created_by, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " RETURNING id",
        (
            tenant_id,
            kind,
            Jsonb(scope),
            invoice_count,
            rendered.pages,
            len(rendered.pdf),
            sha256,
            actor.user_id,
            now,
        ),
    )
    row = await cursor.fetchone()
    assert row is not None
    batch_id = int(row[0])
    after = {
        "kind": kind,
        "scope": scope,
        "invoice_count": invoice_count,
        "pages": rendered.pages,
        "size_bytes": len(rendered.pdf),
        "sha256": sha256,
    }
    await audit.record_many(
        conn, tenant_id, actor, now, [audit.Change("print_batch", batch_id, "print", None, after)]
    )
    return batch_id, sha256


async def print_invoices(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    now: dt.datetime,
    *,
    invoice_ids: Sequence[int] | None = None,
    area_id: int | None = None,
    collector_staff_id: int | None = None,
    period_start: dt.date | None = None,
    progress: Progress | None = None,
) -> PrintBatch:
    """One PDF of the scope's issued invoices in walking order, every print recorded.

    The scope is either ``invoice_ids`` (each must exist in this tenant and be numbered;
    cancelled ones print with their mark) or any of an area, a collector and a period (the
    numbered invoices with a line at such a point; drafts, cancelled and replaced ones left
    out). ``progress(drawn, total)`` is called after every chunk."""
    scope, scope_filter = _scope(invoice_ids, area_id, collector_staff_id, period_start)
    ids = await _scope_ids(conn, tenant_id, invoice_ids, scope_filter)
    rendered = await _render(conn, tenant_id, ids, now, progress)
    # Row locks in id order (no deadlock with a concurrent batch), then the counts: each
    # print_no is the invoice's count of prints so far plus one.
    await conn.execute(
        "SELECT id FROM invoices WHERE tenant_id = %s AND id = ANY(%s) ORDER BY id FOR UPDATE",
        (tenant_id, ids),
    )
    batch_id, sha256 = await _record_batch(
        conn, tenant_id, actor, now, "invoices", scope, len(ids), rendered
    )
    cursor = await conn.execute(
        "UPDATE invoices SET print_count = print_count + 1, last_printed_at = %s,"
        " last_printed_by = %s WHERE tenant_id = %s AND id = ANY(%s) RETURNING id, print_count",
        (now, actor.user_id, tenant_id, ids),
    )
    print_nos = {int(row[0]): int(row[1]) for row in await cursor.fetchall()}
    await conn.execute(
        "INSERT INTO invoice_prints (invoice_id, batch_id, print_no, printed_by, printed_at)"
        " SELECT invoice_id, %s, print_no, %s, %s"
        " FROM unnest(%s::bigint[], %s::integer[]) AS p(invoice_id, print_no)",
        (batch_id, actor.user_id, now, list(print_nos), list(print_nos.values())),
    )
    return PrintBatch(
        id=batch_id,
        kind="invoices",
        invoice_count=len(ids),
        reprints=sum(1 for print_no in print_nos.values() if print_no > 1),
        pages=rendered.pages,
        sha256=sha256,
        pdf=rendered.pdf,
    )


async def print_history(
    conn: AsyncConnection[Any], tenant_id: int, invoice_id: int
) -> list[PrintRecord]:
    """Every print of the invoice, the first first. NotFound for another tenant's."""
    await get_invoice(conn, tenant_id, invoice_id)
    cursor = await conn.execute(
        "SELECT print_no, printed_at, printed_by, batch_id FROM invoice_prints"
        " WHERE invoice_id = %s ORDER BY print_no",
        (invoice_id,),
    )
    return [PrintRecord(*row) for row in await cursor.fetchall()]


async def _customers(
    conn: AsyncConnection[Any], tenant_id: int, customer_ids: Sequence[int]
) -> dict[int, tuple[str, str, str]]:
    """Code, name and phones of each customer. Read here in one query: customers/ has no
    bulk read of them yet."""
    cursor = await conn.execute(
        "SELECT id, code, name, array_to_string(phones, ', ') FROM customers"
        " WHERE tenant_id = %s AND id = ANY(%s)",
        (tenant_id, list(customer_ids)),
    )
    return {int(row[0]): (row[1], row[2], row[3]) for row in await cursor.fetchall()}


async def _dues(
    conn: AsyncConnection[Any], tenant_id: int, customer_ids: Sequence[int], period_start: dt.date
) -> tuple[dict[int, tuple[list[str], int]], set[dt.date], int]:
    """Per customer, the period's numbered invoices that stand (not cancelled or replaced)
    and their total; the periods' ends; how many invoices."""
    cursor = await conn.execute(
        "SELECT customer_id, template || symbol || ' ' || lpad(number::text, 8, '0'),"
        " total_vnd, period_end FROM invoices WHERE tenant_id = %s AND customer_id = ANY(%s)"
        " AND period_start = %s AND NOT status = ANY(%s) ORDER BY customer_id, issue_date, number",
        (tenant_id, list(customer_ids), period_start, [str(s) for s in NOT_DELIVERED]),
    )
    dues: dict[int, tuple[list[str], int]] = {}
    ends: set[dt.date] = set()
    count = 0
    for customer_id, number, total_vnd, period_end in await cursor.fetchall():
        numbers, due = dues.get(customer_id, ([], 0))
        dues[customer_id] = ([*numbers, number], due + total_vnd)
        if period_end is not None:
            ends.add(period_end)
        count += 1
    return dues, ends, count


async def collector_book(
    conn: AsyncConnection[Any],
    tenant_id: int,
    collector_staff_id: int,
    period_start: dt.date,
    actor: audit.Actor,
    now: dt.datetime,
) -> PrintBatch:
    """The collector's book for the period starting ``period_start``: every active point of
    the collector in book order, with what its customer owes (on the customer's first
    point; payments are not recorded yet, so what is due is what was invoiced)."""
    try:
        collector = await fleet.get_staff(conn, tenant_id, collector_staff_id)
    except fleet.NotFound:
        raise NotFound(f"collector {collector_staff_id} does not exist") from None
    points = [
        p
        for p in await customers.collector_book(conn, tenant_id, collector_staff_id)
        if p.status == customers.Status.ACTIVE
    ]
    if not points:
        raise InvalidValue(
            f"collector_staff_id: collector {collector_staff_id} has no active service point"
        )
    customer_ids = list(dict.fromkeys(p.customer_id for p in points))
    people = await _customers(conn, tenant_id, customer_ids)
    dues, ends, invoice_count = await _dues(conn, tenant_id, customer_ids, period_start)
    rows: list[BookRow] = []
    first_row: dict[int, int] = {}
    for point in points:
        code, name, phones = people[point.customer_id]
        numbers, due = dues.get(point.customer_id, ([], 0))
        carried_on = first_row.setdefault(point.customer_id, len(rows) + 1)
        first = carried_on == len(rows) + 1
        rows.append(
            BookRow(
                customer_code=code,
                customer_name=name,
                address=point.address,
                phones=phones,
                invoices=", ".join(numbers),
                due_vnd=due if first and numbers else None,
                see_row=None if first or not numbers else carried_on,
            )
        )
    period = period_text(period_start, ends.pop()) if len(ends) == 1 else None
    seller = await get_seller(conn, tenant_id)
    book = CollectorBook(
        company=seller.legal_name if seller is not None else "",
        collector_name=collector.full_name,
        collector_code=collector.code,
        period=period or f"từ ngày {period_start:%d/%m/%Y}",
        printed_on=local_date(now),
        rows=rows,
    )
    rendered = await asyncio.to_thread(render_book, book, now)
    scope = {"collector_staff_id": collector_staff_id, "period_start": period_start.isoformat()}
    batch_id, sha256 = await _record_batch(
        conn, tenant_id, actor, now, "collector_book", scope, invoice_count, rendered
    )
    return PrintBatch(
        id=batch_id,
        kind="collector_book",
        invoice_count=invoice_count,
        reprints=0,
        pages=rendered.pages,
        sha256=sha256,
        pdf=rendered.pdf,
    )
