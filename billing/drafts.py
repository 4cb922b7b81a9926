"""Writing a draft invoice by hand (ad-hoc work, corrections): its lines, its totals and
the buyer as the customer book has them now. Billing runs draft in bulk (billing_runs)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, model_validator

import audit
from billing.errors import Conflict, InvalidValue, NotFound
from billing.invoice_models import InvoiceKind, InvoiceOrigin, vat_of
from billing.invoices import audit_invoice
from billing.series import get_series
from billing.tariffs import VatRate
from customers.models import Service

MAX_LINES = 500
MAX_LINE_VND = 100_000_000_000  # a hundred billion đồng: beyond any sanitation invoice


class NewLine(BaseModel):
    """One line. ``amount_vnd`` before VAT: given, or quantity × unit price rounded to the
    đồng. On an adjustment it may be negative (a reduction)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    service: Service
    description: str = Field(min_length=1, max_length=500)
    unit: str = Field(default="", max_length=50)
    quantity: Decimal = Field(default=Decimal(1), ge=-1_000_000, le=1_000_000, decimal_places=3)
    unit_price_vnd: Decimal | None = Field(default=None, ge=0, le=MAX_LINE_VND, decimal_places=2)
    amount_vnd: int | None = Field(default=None, ge=-MAX_LINE_VND, le=MAX_LINE_VND)
    vat_rate: VatRate
    service_point_id: int | None = Field(default=None, ge=1)
    stop_visit_id: int | None = Field(default=None, ge=1)
    period_start: dt.date | None = None
    period_end: dt.date | None = None
    adjusts_line_id: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _amount(self) -> NewLine:
        if self.amount_vnd is None and self.unit_price_vnd is None:
            raise ValueError("amount_vnd: give the amount or the unit price")
        if (self.period_start is None) != (self.period_end is None):
            raise ValueError("period_end: give both ends of the service period, or neither")
        if self.period_start and self.period_end and self.period_end <= self.period_start:
            raise ValueError("period_end: must be after period_start")
        return self

    @property
    def amount(self) -> int:
        if self.amount_vnd is not None:
            return self.amount_vnd
        assert self.unit_price_vnd is not None
        exact = self.quantity * self.unit_price_vnd
        return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def check_lines(lines: Sequence[NewLine], *, allow_negative: bool) -> None:
    if not lines:
        raise InvalidValue("lines: at least one line")
    if len(lines) > MAX_LINES:
        raise InvalidValue(f"lines: at most {MAX_LINES}")
    for index, line in enumerate(lines):
        if not allow_negative and (line.amount < 0 or line.quantity < 0):
            raise InvalidValue(f"lines[{index}].amount_vnd: must not be negative here")
        if not allow_negative and line.adjusts_line_id is not None:
            raise InvalidValue(f"lines[{index}].adjusts_line_id: only an adjustment adjusts")


async def _check_points(
    conn: AsyncConnection[Any], tenant_id: int, customer_id: int, lines: Sequence[NewLine]
) -> None:
    wanted = {line.service_point_id for line in lines if line.service_point_id is not None}
    if not wanted:
        return
    cursor = await conn.execute(
        "SELECT id FROM service_points WHERE tenant_id = %s AND customer_id = %s AND id = ANY(%s)",
        (tenant_id, customer_id, list(wanted)),
    )
    found = {row[0] for row in await cursor.fetchall()}
    for index, line in enumerate(lines):
        if line.service_point_id is not None and line.service_point_id not in found:
            raise InvalidValue(
                f"lines[{index}].service_point_id: service point {line.service_point_id}"
                f" is not one of customer {customer_id}'s"
            )


async def insert_draft(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    now: dt.datetime,
    *,
    customer_id: int,
    series_id: int,
    kind: InvoiceKind,
    origin: InvoiceOrigin,
    lines: Sequence[NewLine],
    proofs: dict[int, dict[str, Any]] | None = None,
    note: str = "",
    correction_reason: str | None = None,
    buyer: dict[str, Any] | None = None,
    period: tuple[str, dt.date, dt.date] | None = None,
) -> int:
    """A draft with ``lines`` for the customer; ``proofs`` by line index (an ad-hoc line's
    recorded service); ``buyer`` overrides the customer book's name, tax code, address,
    email (a replacement correcting them); ``period`` (kind, start, end) the billing period
    it bills, when one (a replacement of a period's invoice). Its id."""
    series = await get_series(conn, tenant_id, series_id)
    if not series.active:
        raise InvalidValue(f"series_id: series {series.code} is retired")
    cursor = await conn.execute(
        "SELECT c.code, c.name, c.tax_code, coalesce(nullif(c.billing_address, ''),"
        " (SELECT address FROM service_points p WHERE p.customer_id = c.id ORDER BY p.id"
        " LIMIT 1), ''), c.email, c.kind FROM customers c WHERE c.tenant_id = %s AND c.id = %s",
        (tenant_id, customer_id),
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"customer {customer_id} does not exist")
    code, name, tax_code, address, email, customer_kind = row
    if buyer:
        name = buyer.get("name", name)
        tax_code = buyer.get("tax_code", tax_code)
        address = buyer.get("address", address)
        email = buyer.get("email", email)
    await _check_points(conn, tenant_id, customer_id, lines)
    amounts = [line.amount for line in lines]
    vats = [vat_of(amount, line.vat_rate) for amount, line in zip(amounts, lines, strict=True)]
    subtotal, vat = sum(amounts), sum(vats)
    cursor = await conn.execute(
        "INSERT INTO invoices (tenant_id, customer_id, kind, origin, status, series_id,"
        " billing_period, period_start, period_end,"
        " buyer_code, buyer_name, buyer_tax_code, buyer_address, buyer_email, buyer_kind, note,"
        " subtotal_vnd, vat_vnd, total_vnd, correction_reason, created_by, created_at,"
        " updated_at) VALUES (%s, %s, %s, %s, 'draft', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
        " %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (
            tenant_id,
            customer_id,
            kind,
            origin,
            series_id,
            *(period or (None, None, None)),
            code,
            name,
            tax_code,
            address,
            email,
            customer_kind,
            note,
            subtotal,
            vat,
            subtotal + vat,
            correction_reason,
            actor.user_id,
            now,
            now,
        ),
    )
    inserted = await cursor.fetchone()
    assert inserted is not None
    invoice_id = int(inserted[0])
    proofs = proofs or {}
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO invoice_lines (invoice_id, line_no, service_point_id, service,"
            " description, unit, quantity, unit_price_vnd, amount_vnd, vat_rate, vat_vnd,"
            " period_start, period_end, stop_visit_id, proof, adjusts_line_id)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    invoice_id,
                    index + 1,
                    line.service_point_id,
                    line.service,
                    line.description,
                    line.unit,
                    line.quantity,
                    line.unit_price_vnd,
                    amount,
                    line.vat_rate,
                    line_vat,
                    line.period_start,
                    line.period_end,
                    line.stop_visit_id,
                    Jsonb(proofs[index]) if index in proofs else None,
                    line.adjusts_line_id,
                )
                for index, (line, amount, line_vat) in enumerate(
                    zip(lines, amounts, vats, strict=True)
                )
            ],
        )
    await audit_invoice(
        conn,
        tenant_id,
        actor,
        now,
        (invoice_id, customer_id),
        "draft",
        None,
        {
            "kind": str(kind),
            "origin": str(origin),
            "lines": len(lines),
            "total_vnd": subtotal + vat,
        },
    )
    return invoice_id


async def delete_draft(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    now: dt.datetime,
    invoice_id: int,
) -> None:
    """A draft has no number and was never sent: it may go. Anything issued stays."""
    cursor = await conn.execute(
        "SELECT status, customer_id, total_vnd FROM invoices WHERE tenant_id = %s AND id = %s"
        " FOR UPDATE",
        (tenant_id, invoice_id),
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"invoice {invoice_id} does not exist")
    if row[0] != "draft":
        raise Conflict(f"invoice_id: invoice {invoice_id} is {row[0]}; an issued invoice stays")
    await conn.execute(
        "UPDATE adjustment_proposals SET adjustment_invoice_id = NULL"
        " WHERE adjustment_invoice_id = %s",
        (invoice_id,),
    )
    await conn.execute("DELETE FROM invoice_agreements WHERE invoice_id = %s", (invoice_id,))
    await conn.execute("DELETE FROM invoice_references WHERE invoice_id = %s", (invoice_id,))
    await conn.execute("DELETE FROM invoice_lines WHERE invoice_id = %s", (invoice_id,))
    await conn.execute("DELETE FROM invoices WHERE id = %s", (invoice_id,))
    await audit_invoice(
        conn,
        tenant_id,
        actor,
        now,
        (invoice_id, row[1]),
        "delete_draft",
        {"status": "draft", "total_vnd": row[2]},
        None,
    )
