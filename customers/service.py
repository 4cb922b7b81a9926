"""Customer-book operations: the only code that reads or writes customers and service points.

Every function takes an open connection; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection

from customers.models import CustomerKind, NewServicePoint, ServicePoint, Status

_SELECT = (
    "SELECT p.id, p.tenant_id, p.customer_id, p.code, c.name, c.kind, p.address, p.ward,"
    " p.lat, p.lon, p.so_khau, p.volume_m3_per_day::float8, p.waste_kg_per_day::float8, p.status"
    " FROM service_points p JOIN customers c ON c.id = p.customer_id"
)


def _point(row: tuple[Any, ...]) -> ServicePoint:
    return ServicePoint(
        id=row[0],
        tenant_id=row[1],
        customer_id=row[2],
        code=row[3],
        name=row[4],
        kind=CustomerKind(row[5]),
        address=row[6],
        ward=row[7],
        lat=row[8],
        lon=row[9],
        so_khau=row[10],
        volume_m3_per_day=row[11],
        waste_kg_per_day=row[12],
        status=Status(row[13]),
    )


async def ensure_service_points(
    conn: AsyncConnection[Any], tenant_id: int, points: Sequence[NewServicePoint]
) -> dict[str, int]:
    """Create the customers and service points whose codes are new; return every code's id.

    The customer takes the service point's code: one point per customer is the common case
    (a household); a business with several points gets them from the customers issue's import.
    Existing codes are left as they are, so re-running an import or a scenario changes nothing.
    """
    if not points:
        return {}
    async with conn.cursor() as cursor:
        await cursor.executemany(
            "INSERT INTO customers (tenant_id, code, name, kind, phone)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (tenant_id, code) DO NOTHING",
            [(tenant_id, p.code, p.name, str(p.kind), p.phone) for p in points],
        )
        await cursor.executemany(
            "INSERT INTO service_points (tenant_id, customer_id, code, address, ward, lat, lon,"
            " position_accuracy_m, position_source, so_khau, volume_m3_per_day, waste_kg_per_day)"
            " SELECT %s, c.id, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s"
            " FROM customers c WHERE c.tenant_id = %s AND c.code = %s"
            " ON CONFLICT (tenant_id, code) DO NOTHING",
            [
                (
                    tenant_id,
                    p.code,
                    p.address,
                    p.ward,
                    p.lat,
                    p.lon,
                    p.position_accuracy_m,
                    str(p.position_source),
                    p.so_khau,
                    p.volume_m3_per_day,
                    p.waste_kg_per_day,
                    tenant_id,
                    p.code,
                )
                for p in points
            ],
        )
        await cursor.execute(
            "SELECT code, id FROM service_points WHERE tenant_id = %s AND code = ANY(%s)",
            (tenant_id, [p.code for p in points]),
        )
        return {code: int(point_id) for code, point_id in await cursor.fetchall()}


async def list_service_points(
    conn: AsyncConnection[Any], tenant_id: int, *, limit: int = 10_000, offset: int = 0
) -> list[ServicePoint]:
    cursor = await conn.execute(
        _SELECT + " WHERE p.tenant_id = %s ORDER BY p.code LIMIT %s OFFSET %s",
        (tenant_id, limit, offset),
    )
    return [_point(row) for row in await cursor.fetchall()]


async def count_service_points(conn: AsyncConnection[Any], tenant_id: int) -> int:
    cursor = await conn.execute(
        "SELECT count(*) FROM service_points WHERE tenant_id = %s", (tenant_id,)
    )
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])
