"""A small customer book for the tests: one company, an area, two collectors, customers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import audit
import customers
import fleet
from customers import CustomerKind, NewArea, NewCustomer, NewPoint, Position
from storage import Pool

AT = dt.datetime(2026, 12, 5, 2, 0, tzinfo=dt.UTC)  # 09:00 in Hanoi
TODAY = dt.date(2026, 12, 5)
CLERK = audit.Actor("clerk")


@dataclass
class Book:
    tenant_id: int
    area_id: int
    rural_area_id: int
    collector_ids: tuple[int, int]


async def make_book(pool: Pool, slug: str) -> Book:
    async with pool.connection() as conn:
        tenant = await fleet.ensure_tenant(conn, slug, slug)
        collectors = []
        for code in ("TG01", "TG02"):
            collectors.append(
                await fleet.ensure_staff(conn, tenant.id, code, f"Thu gom {code}",
                                         fleet.StaffRole.COLLECTOR)
            )  # fmt: skip
        area = await customers.create_area(
            conn, tenant.id, CLERK, AT, NewArea(code="P-VQ", name="Vạn Phúc", ward="Vạn Phúc")
        )
        rural = await customers.create_area(
            conn, tenant.id, CLERK, AT,
            NewArea(code="X-DL", name="Đông La", ward="Đông La", area_group="rural"),
        )  # fmt: skip
    return Book(tenant.id, area.id, rural.id, (collectors[0], collectors[1]))


def household(
    code: str,
    name: str,
    *,
    area_id: int | None = None,
    lat: float = 20.97,
    lon: float = 105.77,
    so_khau: int = 4,
    address: str = "Số 12 Nguyễn Trãi, Hà Đông",
    collector: int | None = None,
    phones: tuple[str, ...] = ("0912 345 678",),
    valid_from: dt.date = dt.date(2026, 1, 1),
) -> NewCustomer:
    return NewCustomer(
        code=code,
        name=name,
        kind=CustomerKind.HOUSEHOLD,
        phones=list(phones),
        points=[
            NewPoint(
                code=code,
                address=address,
                street="Nguyễn Trãi",
                area_id=area_id,
                position=Position(lat=lat, lon=lon, accuracy_m=8),
                so_khau=so_khau,
                collector_staff_id=collector,
                valid_from=valid_from,
            )
        ],
    )


def business(code: str, name: str, volume_m3: str, **point: object) -> NewCustomer:
    return NewCustomer(
        code=code,
        name=name,
        kind=CustomerKind.BUSINESS,
        tax_code="0101234567",
        points=[
            NewPoint(
                code=code,
                position=Position(lat=20.98, lon=105.78),
                customer_class="restaurant",
                volume_m3_per_month=Decimal(volume_m3),
                valid_from=dt.date(2026, 1, 1),
                **point,
            )
        ],
    )
