"""Reading invoices, and the seller's details they carry.

Every function takes an open connection and a tenant: another tenant's invoice is as
missing as one that never existed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

import audit
from billing.errors import InvalidValue, NotFound
from billing.invoice_models import (
    INVOICE_COLUMNS,
    LINE_COLUMNS,
    Invoice,
    InvoiceDocument,
    InvoiceLine,
    InvoiceReference,
    InvoiceStatus,
    Seller,
    invoice_from_row,
    line_from_row,
)

MAX_PAGE = 1000


async def audit_invoice(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    now: dt.datetime,
    invoice: tuple[int, int],
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """One audit entry on invoice ``(id, customer id)``, in the caller's transaction."""
    invoice_id, customer_id = invoice
    change = audit.Change("invoice", invoice_id, action, before, after, customer_id=customer_id)
    await audit.record(conn, tenant_id, actor, now, change)


async def get_seller(conn: AsyncConnection[Any], tenant_id: int) -> Seller | None:
    cursor = await conn.execute(
        "SELECT legal_name, tax_code, address, phone, email, bank_account, bank_name"
        " FROM sellers WHERE tenant_id = %s",
        (tenant_id,),
    )
    row = await cursor.fetchone()
    return None if row is None else Seller(*row)


async def set_seller(conn: AsyncConnection[Any], tenant_id: int, seller: Seller) -> Seller:
    """Insert or replace the seller's details. Invoices already issued keep the details
    they were issued with."""
    await conn.execute(
        "INSERT INTO sellers (tenant_id, legal_name, tax_code, address, phone, email,"
        " bank_account, bank_name, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now())"
        " ON CONFLICT (tenant_id) DO UPDATE SET legal_name = EXCLUDED.legal_name,"
        " tax_code = EXCLUDED.tax_code, address = EXCLUDED.address, phone = EXCLUDED.phone,"
        " email = EXCLUDED.email, bank_account = EXCLUDED.bank_account,"
        " bank_name = EXCLUDED.bank_name, updated_at = now()",
        (
            tenant_id,
            seller.legal_name,
            seller.tax_code,
            seller.address,
            seller.phone,
            seller.email,
            seller.bank_account,
            seller.bank_name,
        ),
    )
    return seller


async def require_seller(conn: AsyncConnection[Any], tenant_id: int) -> Seller:
    seller = await get_seller(conn, tenant_id)
    if seller is None:
        raise InvalidValue(
            "seller: the company's legal name, tax code and address are not set"
            " (PUT /billing/seller)"
        )
    return seller


def seller_json(seller: Seller) -> Jsonb:
    return Jsonb(seller.as_json())


async def get_invoice(
    conn: AsyncConnection[Any], tenant_id: int, invoice_id: int, *, for_update: bool = False
) -> Invoice:
    cursor = await conn.execute(
        f"SELECT {INVOICE_COLUMNS} FROM invoices WHERE tenant_id = %s AND id = %s"
        + (" FOR UPDATE" if for_update else ""),
        (tenant_id, invoice_id),
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"invoice {invoice_id} does not exist")
    return invoice_from_row(row)


async def lines_of(
    conn: AsyncConnection[Any], invoice_ids: Sequence[int]
) -> dict[int, list[InvoiceLine]]:
    """The lines of each invoice, by line number (the caller has checked the tenant)."""
    cursor = await conn.execute(
        f"SELECT invoice_id, {LINE_COLUMNS} FROM invoice_lines WHERE invoice_id = ANY(%s)"
        " ORDER BY invoice_id, line_no",
        (list(invoice_ids),),
    )
    lines: dict[int, list[InvoiceLine]] = {invoice_id: [] for invoice_id in invoice_ids}
    for row in await cursor.fetchall():
        lines[row[0]].append(line_from_row(row[1:]))
    return lines


async def references_of(
    conn: AsyncConnection[Any], invoice_ids: Sequence[int]
) -> dict[int, list[InvoiceReference]]:
    cursor = await conn.execute(
        "SELECT invoice_id, referenced_id, relation, referenced_template, referenced_symbol,"
        " referenced_number, referenced_issue_date FROM invoice_references"
        " WHERE invoice_id = ANY(%s) ORDER BY invoice_id, referenced_issue_date, referenced_number",
        (list(invoice_ids),),
    )
    references: dict[int, list[InvoiceReference]] = {invoice_id: [] for invoice_id in invoice_ids}
    for row in await cursor.fetchall():
        references[row[0]].append(InvoiceReference(*row[1:]))
    return references


async def load_documents(
    conn: AsyncConnection[Any], tenant_id: int, invoice_ids: Sequence[int]
) -> list[InvoiceDocument]:
    """The documents of ``invoice_ids`` in that order. NotFound names the first missing."""
    ids = list(dict.fromkeys(invoice_ids))
    cursor = await conn.execute(
        f"SELECT {INVOICE_COLUMNS}, seller FROM invoices WHERE tenant_id = %s AND id = ANY(%s)",
        (tenant_id, ids),
    )
    found: dict[int, tuple[Invoice, dict[str, Any] | None]] = {}
    for row in await cursor.fetchall():
        found[row[0]] = (invoice_from_row(row[:-1]), row[-1])
    missing = [invoice_id for invoice_id in ids if invoice_id not in found]
    if missing:
        raise NotFound(f"invoice {missing[0]} does not exist")
    current = None
    if any(seller is None for _, seller in found.values()):
        current = await require_seller(conn, tenant_id)
    lines = await lines_of(conn, ids)
    references = await references_of(conn, ids)
    documents = []
    for invoice_id in ids:
        invoice, seller = found[invoice_id]
        documents.append(
            InvoiceDocument(
                invoice=invoice,
                lines=lines[invoice_id],
                references=references[invoice_id],
                seller=Seller(**seller) if seller is not None else current,  # type: ignore[arg-type]
            )
        )
    return documents


@dataclass(frozen=True, slots=True)
class InvoiceFilter:
    status: InvoiceStatus | None = None
    customer_id: int | None = None
    period_start: dt.date | None = None
    billing_run_id: int | None = None
    series_id: int | None = None
    area_id: int | None = None
    collector_staff_id: int | None = None
    issued_from: dt.date | None = None
    issued_to: dt.date | None = None  # inclusive
    number: int | None = None
    buyer: str | None = None  # the start of the buyer's code, or a part of the name


def _where(tenant_id: int, f: InvoiceFilter) -> tuple[str, dict[str, Any]]:
    where = ["i.tenant_id = %(tenant)s"]
    params: dict[str, Any] = {"tenant": tenant_id}
    for column, value in (
        ("i.status", f.status),
        ("i.customer_id", f.customer_id),
        ("i.period_start", f.period_start),
        ("i.billing_run_id", f.billing_run_id),
        ("i.series_id", f.series_id),
    ):
        if value is not None:
            name = column.split(".")[1]
            where.append(f"{column} = %({name})s")
            params[name] = str(value) if isinstance(value, InvoiceStatus) else value
    if f.number is not None:
        where.append("i.number = %(number)s")
        params["number"] = f.number
    if f.buyer:
        where.append("(i.buyer_code ILIKE %(buyer_prefix)s OR i.buyer_name ILIKE %(buyer_part)s)")
        escaped = f.buyer.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params["buyer_prefix"] = escaped + "%"
        params["buyer_part"] = "%" + escaped + "%"
    if f.issued_from is not None:
        where.append("i.issue_date >= %(issued_from)s")
        params["issued_from"] = f.issued_from
    if f.issued_to is not None:
        where.append("i.issue_date <= %(issued_to)s")
        params["issued_to"] = f.issued_to
    if f.area_id is not None or f.collector_staff_id is not None:
        # an invoice belongs to the areas and collectors of the points on its lines
        point_where = []
        if f.area_id is not None:
            point_where.append("p.area_id = %(area)s")
            params["area"] = f.area_id
        if f.collector_staff_id is not None:
            point_where.append("p.collector_staff_id = %(collector)s")
            params["collector"] = f.collector_staff_id
        where.append(
            "EXISTS (SELECT 1 FROM invoice_lines l JOIN service_points p"
            " ON p.id = l.service_point_id WHERE l.invoice_id = i.id AND "
            + " AND ".join(point_where)
            + ")"
        )
    return " AND ".join(where), params


async def list_invoices(
    conn: AsyncConnection[Any],
    tenant_id: int,
    f: InvoiceFilter = InvoiceFilter(),
    *,
    after_id: int | None = None,
    limit: int = 100,
) -> list[Invoice]:
    """A page of invoices, newest id first; ``after_id`` continues below that id."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidValue(f"limit: must be between 1 and {MAX_PAGE}")
    where, params = _where(tenant_id, f)
    if after_id is not None:
        where += " AND i.id < %(after)s"
        params["after"] = after_id
    params["limit"] = limit
    columns = ", ".join("i." + c.strip() for c in INVOICE_COLUMNS.split(","))
    cursor = await conn.execute(
        f"SELECT {columns} FROM invoices i WHERE {where} ORDER BY i.id DESC LIMIT %(limit)s",
        params,
    )
    return [invoice_from_row(row) for row in await cursor.fetchall()]


async def invoice_ids(conn: AsyncConnection[Any], tenant_id: int, f: InvoiceFilter) -> list[int]:
    """Every invoice id matching ``f``, ascending (for printing and batch issue)."""
    where, params = _where(tenant_id, f)
    cursor = await conn.execute(f"SELECT i.id FROM invoices i WHERE {where} ORDER BY i.id", params)
    return [row[0] for row in await cursor.fetchall()]
