"""The demo's customer office: the simulated city's customers given areas (its wards),
collectors, Hà Nội's tariffs and this month's charges, so the customer pages open on a
book that looks like a company's; the seller, a series and last month invoiced.
Everything goes through the services an office uses; running it again changes nothing
that is already there.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass

import audit
import billing
import customers
import fleet
from billing.sample_tariffs import hanoi_tariffs
from customers.text import fold
from sanitrack.settings import CustomersSettings
from storage import Pool

OFFICE = audit.Actor("demo set-up")


@dataclass(frozen=True, slots=True)
class OfficeBook:
    areas: int
    points: int
    tariffs: int
    charged_points: int
    charged_vnd: int


def _area_code(ward: str) -> str:
    return ("P-" + fold(ward).replace(" ", "-").upper())[:32] or "P-KHAC"


async def prepare_office(
    pool: Pool, tenant_slug: str, now: dt.datetime, settings: CustomersSettings
) -> OfficeBook:
    today = now.astimezone(zoneinfo.ZoneInfo(settings.timezone)).date()
    async with pool.connection() as conn, conn.transaction():
        tenant = await fleet.get_tenant(conn, tenant_slug)
        points = await customers.list_service_points(conn, tenant.id, limit=1_000_000)
        collectors = sorted(
            (m for m in await fleet.list_staff(conn, tenant.id) if m.role == "collector"),
            key=lambda m: m.code,
        )
        areas = {a.code: a for a in await customers.list_areas(conn, tenant.id)}
        by_ward: dict[str, list[customers.ServicePoint]] = defaultdict(list)
        for point in points:
            by_ward[point.ward or "Khác"].append(point)
        for n, (ward, ward_points) in enumerate(sorted(by_ward.items())):
            code = _area_code(ward)
            collector = collectors[n % len(collectors)].id if collectors else None
            if code not in areas:
                areas[code] = await customers.create_area(
                    conn, tenant.id, OFFICE, now,
                    customers.NewArea(code=code, name=ward, ward=ward,
                                      collector_staff_id=collector),
                )  # fmt: skip
            unplaced = [p.id for p in ward_points if p.area_id is None]
            if unplaced:
                await customers.move_points(
                    conn, tenant.id, OFFICE, now, unplaced,
                    area_id=areas[code].id, collector_staff_id=collector, today=today,
                )  # fmt: skip
        existing = {t.code for t in await billing.list_tariff_versions(conn, tenant.id)}
        # Valid from the start of the year, so that this month's charges have a tariff.
        created = 0
        for version in hanoi_tariffs(dt.date(today.year, 1, 1)):
            if version.code not in existing:
                await billing.create_tariff_version(conn, tenant.id, OFFICE, now, version)
                created += 1
        month = dt.date(today.year, today.month, 1)
        run = await billing.compute_charges(
            conn, tenant.id, month, customers.BillingPeriod.MONTHLY, now=now
        )
        await customers.rebuild_cells(conn, tenant.id, now)
    return OfficeBook(len(areas), len(points), created, run.points, run.total_vnd)


DEMO_SELLER = billing.Seller(
    legal_name="Công ty TNHH MTV Môi trường Đô thị (bản thử)",
    tax_code="0100106779",
    address="Số 18 Nguyễn Chí Thanh, phường Ngọc Khánh, Hà Nội",
    phone="024 3835 2536",
    email="hoadon@moitruong.example",
    bank_account="1020 1000 0012 345",
    bank_name="Ngân hàng TMCP Công thương Việt Nam",
)


@dataclass(frozen=True, slots=True)
class OfficeInvoices:
    series: str
    period_start: dt.date
    drafted: int
    issued: int
    total_vnd: int


async def prepare_invoices(
    pool: Pool, tenant_slug: str, now: dt.datetime, settings: CustomersSettings
) -> OfficeInvoices:
    """The seller, this year's series and last month billed and issued, once: the invoice
    pages open on a month an accountant has just finished."""
    today = now.astimezone(zoneinfo.ZoneInfo(settings.timezone)).date()
    last_month = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    symbol = f"C{today.year % 100:02d}TAA"
    async with pool.connection() as conn, conn.transaction():
        tenant = await fleet.get_tenant(conn, tenant_slug)
        if await billing.get_seller(conn, tenant.id) is None:
            await billing.set_seller(conn, tenant.id, DEMO_SELLER)
        series = {s.symbol: s for s in await billing.list_series(conn, tenant.id)}.get(symbol)
        if series is None:
            series = await billing.create_series(
                conn, tenant.id, OFFICE, now,
                billing.NewSeries(symbol=symbol, name="Phí thu gom rác sinh hoạt"),
            )  # fmt: skip
        state = await billing.period_state(conn, tenant.id, "monthly", last_month)
        if state.issued or state.drafts:
            return OfficeInvoices(series.code, last_month, 0, 0, 0)
        run = await billing.run_billing(
            conn, tenant.id, OFFICE, now, "monthly", last_month, series.id, today=today
        )
        drafts = await billing.invoice_ids(
            conn, tenant.id, billing.InvoiceFilter(billing_run_id=run.id)
        )
        issued = await billing.issue_invoices(
            conn, tenant.id, OFFICE, now, drafts, issue_date=today
        )
    return OfficeInvoices(series.code, last_month, run.invoices_drafted, len(issued), run.total_vnd)
