"""Invoices written straight into the tables, for the tests of what reads them (printing,
the e-invoice provider, revenue) without going through billing runs and issuing."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

import customers
import fleet
from billing.invoice_models import Seller, vat_of
from billing.invoices import set_seller

SELLER = Seller(
    legal_name="Công ty TNHH MTV Môi trường Đô thị Hà Nội",
    tax_code="0100106779",
    address="Số 18 Nguyễn Chí Thanh, phường Ngọc Khánh, quận Ba Đình, Hà Nội",
    phone="024 3835 2536",
    bank_account="1020 1000 0012 345",
    bank_name="Ngân hàng TMCP Công thương Việt Nam",
)
ISSUED_AT = dt.datetime(2026, 7, 2, 2, 0, tzinfo=dt.UTC)
NAMES = ["Nguyễn Văn Ánh", "Trần Thị Bưởi", "Lê Đức Thọ", "Phạm Thị Hường", "Đặng Quốc Việt"]


async def new_tenant(conn: AsyncConnection[Any]) -> int:
    tenant = await fleet.ensure_tenant(conn, f"t-{uuid.uuid4().hex[:8]}", "URENCO")
    await set_seller(conn, tenant.id, SELLER)
    return tenant.id


async def new_series(
    conn: AsyncConnection[Any], tenant_id: int, symbol: str = "C26TAA", template: str = "1"
) -> int:
    cursor = await conn.execute(
        "INSERT INTO invoice_series (tenant_id, template, symbol, year, name, created_at)"
        " VALUES (%s, %s, %s, %s, 'Thu phí vệ sinh', %s) RETURNING id",
        (tenant_id, template, symbol, 2000 + int(symbol[1:3]), ISSUED_AT),
    )
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def seed_invoices(
    conn: AsyncConnection[Any],
    tenant_id: int,
    count: int = 1,
    *,
    status: str = "issued",
    vat_rate: str = "8",
    amounts_vnd: tuple[int, ...] = (36_000, 130_000),
    period_start: dt.date = dt.date(2026, 6, 1),
    series_id: int | None = None,
) -> list[int]:
    """``count`` invoices of one customer each, every one with a line per amount (one
    service point per line), numbered 1..count on series 1C26TAA when not drafts."""
    if series_id is None:
        series_id = await new_series(conn, tenant_id)
    cursor = await conn.execute(
        "SELECT template, symbol FROM invoice_series WHERE id = %s", (series_id,)
    )
    series_row = await cursor.fetchone()
    assert series_row is not None
    template, symbol = series_row
    period_end = dt.date(
        period_start.year + period_start.month // 12, period_start.month % 12 + 1, 1
    )
    tag = uuid.uuid4().hex[:6]
    invoice_ids = []
    for index in range(count):
        name = NAMES[index % len(NAMES)]
        points = [
            customers.NewServicePoint(
                code=f"KH{tag}{index:05d}-{n}",
                name=name,
                kind=customers.CustomerKind.HOUSEHOLD,
                lat=21.0 + index * 1e-4,
                lon=105.8 + n * 1e-4,
                address=f"Số {index + 1} ngõ {n + 1} phố Hàng Bạc, phường Hoàn Kiếm",
            )
            for n in range(len(amounts_vnd))
        ]
        ids = await customers.ensure_service_points(conn, tenant_id, points)
        point_ids = [ids[p.code] for p in points]
        cursor = await conn.execute(
            "SELECT customer_id FROM service_points WHERE id = %s", (point_ids[0],)
        )
        customer_row = await cursor.fetchone()
        assert customer_row is not None
        customer_id = customer_row[0]
        await conn.execute(
            "UPDATE service_points SET customer_id = %s WHERE id = ANY(%s)",
            (customer_id, point_ids),
        )
        vats = [vat_of(a, vat_rate) for a in amounts_vnd]
        subtotal, vat = sum(amounts_vnd), sum(vats)
        numbered = status != "draft"
        cursor = await conn.execute(
            "INSERT INTO invoices (tenant_id, customer_id, kind, origin, status, billing_period,"
            " period_start, period_end, series_id, template, symbol, number, issue_date,"
            " issued_at, seller_tax_code, seller, buyer_code, buyer_name, buyer_address,"
            " buyer_kind, subtotal_vnd, vat_vnd, total_vnd, created_at, updated_at)"
            " VALUES (%s, %s, 'original', 'period', %s, 'monthly', %s, %s, %s, %s, %s, %s, %s,"
            " %s, %s, %s, %s, %s, %s, 'household', %s, %s, %s, %s, %s) RETURNING id",
            (
                tenant_id,
                customer_id,
                status,
                period_start,
                period_end,
                series_id,
                template if numbered else None,
                symbol if numbered else None,
                index + 1 if numbered else None,
                ISSUED_AT.date() if numbered else None,
                ISSUED_AT if numbered else None,
                SELLER.tax_code if numbered else None,
                Jsonb(SELLER.as_json()) if numbered else None,
                f"KH{tag}{index:05d}",
                name,
                points[0].address,
                subtotal,
                vat,
                subtotal + vat,
                ISSUED_AT,
                ISSUED_AT,
            ),
        )
        invoice_row = await cursor.fetchone()
        assert invoice_row is not None
        invoice_id = invoice_row[0]
        for line_no, (point_id, amount, line_vat) in enumerate(
            zip(point_ids, amounts_vnd, vats, strict=True), start=1
        ):
            await conn.execute(
                "INSERT INTO invoice_lines (invoice_id, line_no, service_point_id, service,"
                " description, unit, quantity, unit_price_vnd, amount_vnd, vat_rate, vat_vnd,"
                " period_start, period_end) VALUES (%s, %s, %s, 'collection',"
                " 'Dịch vụ thu gom, vận chuyển rác thải sinh hoạt tháng 6/2026', 'tháng', 1,"
                " %s, %s, %s, %s, %s, %s)",
                (
                    invoice_id,
                    line_no,
                    point_id,
                    amount,
                    amount,
                    vat_rate,
                    line_vat,
                    period_start,
                    period_end,
                ),
            )
        invoice_ids.append(invoice_id)
    if status != "draft":
        await conn.execute(
            "UPDATE invoice_series SET next_number = %s, last_issued_at = %s WHERE id = %s",
            (count + 1, ISSUED_AT, series_id),
        )
    return invoice_ids
