"""What the route planner needs from the customer book: the service points due on a day."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

# Seconds a crew spends at a point when the book does not say, by kind of customer.
DEFAULT_SERVICE_S = {"household": 45, "business_household": 60, "business": 120, "agency": 120}


@dataclass(frozen=True, slots=True)
class DuePoint:
    id: int
    code: str
    name: str
    address: str
    lat: float
    lon: float
    area_code: str  # the địa bàn ("" when the point has none)
    collector_staff_id: int | None  # the area's collector, or the point's own
    waste_kg: float
    volume_l: float
    service_s: int
    window_open: dt.time | None
    window_close: dt.time | None


async def points_due(
    conn: AsyncConnection[Any], tenant_id: int, local_date: dt.date
) -> list[DuePoint]:
    """Active points with the collection service whose collection days include the date."""
    cursor = await conn.execute(
        "SELECT p.id, p.code, c.name, p.address, p.lat, p.lon, coalesce(a.code, ''),"
        " coalesce(p.collector_staff_id, a.collector_staff_id), p.waste_kg_per_day,"
        " coalesce(p.volume_m3_per_day, 0) * 1000, p.service_s, c.kind, p.window_open,"
        " p.window_close"
        " FROM service_points p JOIN customers c ON c.id = p.customer_id"
        " LEFT JOIN areas a ON a.tenant_id = p.tenant_id AND a.id = p.area_id"
        " WHERE p.tenant_id = %s AND p.status = 'active' AND c.status = 'active'"
        " AND 'collection' = ANY(p.services) AND %s = ANY(p.collection_days)"
        " ORDER BY p.id",
        (tenant_id, local_date.isoweekday()),
    )
    return [
        DuePoint(
            id=row[0],
            code=row[1],
            name=row[2],
            address=row[3],
            lat=row[4],
            lon=row[5],
            area_code=row[6],
            collector_staff_id=row[7],
            waste_kg=float(row[8]),
            volume_l=float(row[9]),
            service_s=row[10] if row[10] is not None else DEFAULT_SERVICE_S.get(row[11], 60),
            window_open=row[12],
            window_close=row[13],
        )
        for row in await cursor.fetchall()
    ]
