"""Finding service points: the office's search box and the customer map.

Search folds the query like the stored ``search_text`` (no diacritics, no case) and asks
that every word occur in it, through the trigram index. Results come in code order, so a
broad query ("nguyen") walks the code index and stops at the page's end, and a narrow one
("0912345678") goes through the trigram index: PostgreSQL picks from its statistics.

The map answers a viewport with the points in it, or, when there are more than a page of
them, with clusters on a grid sized to the zoom (about 64 screen pixels a cell).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

import alerts
from customers.models import CustomerKind, ServicePoint, Status
from customers.service import SELECT_POINTS, point_from_row
from customers.text import search_terms


@dataclass(frozen=True, slots=True)
class PointFilter:
    area_id: int | None = None
    customer_class: str | None = None
    status: Status | None = None
    kind: CustomerKind | None = None
    collector_staff_id: int | None = None

    def where(self, params: dict[str, Any]) -> list[str]:
        clauses = []
        for name, column in (
            ("area_id", "p.area_id"),
            ("customer_class", "p.customer_class"),
            ("status", "p.status"),
            ("kind", "c.kind"),
            ("collector_staff_id", "p.collector_staff_id"),
        ):
            value = getattr(self, name)
            if value is not None:
                params[name] = str(value) if name in ("status", "kind") else value
                clauses.append(f"{column} = %({name})s")
        return clauses


async def search_points(
    conn: AsyncConnection[Any],
    tenant_id: int,
    query: str = "",
    *,
    filters: PointFilter | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[ServicePoint]:
    """Points whose name, codes, phones, tax code or address hold every word of ``query``
    (diacritics and case ignored), in code order."""
    params: dict[str, Any] = {"tenant": tenant_id, "limit": limit, "offset": offset}
    where = ["p.tenant_id = %(tenant)s", *(filters or PointFilter()).where(params)]
    for n, word in enumerate(search_terms(query)[:8]):
        params[f"w{n}"] = f"%{word}%"  # folded words hold only [0-9a-z]: no LIKE wildcards
        where.append(f"p.search_text LIKE %(w{n})s")
    cursor = await conn.execute(
        SELECT_POINTS + f" WHERE {' AND '.join(where)}"
        " ORDER BY p.code LIMIT %(limit)s OFFSET %(offset)s",
        params,
    )
    return [point_from_row(row) for row in await cursor.fetchall()]


# ---------------------------------------------------------------- the map

MAX_MAP_POINTS = 2000
CELL_PX = 64


@dataclass(frozen=True, slots=True)
class Viewport:
    south: float
    west: float
    north: float
    east: float
    zoom: int  # the web map's zoom level, 0-22

    def cell_deg(self) -> float:
        """A cluster cell's side in degrees of longitude at this zoom (256-pixel tiles)."""
        return 360.0 / float(2**self.zoom) / (256 / CELL_PX)


async def map_view(
    conn: AsyncConnection[Any],
    tenant_id: int,
    viewport: Viewport,
    *,
    filters: PointFilter | None = None,
    collected_since: dt.datetime | None = None,
    collected_until: dt.datetime | None = None,
) -> dict[str, Any]:
    """``{"points": [...], "clusters": [...]}`` for the viewport: the points when at most
    ``MAX_MAP_POINTS`` are in it, otherwise clusters (count and centre). With a collection
    window, each point says whether a stop visit served it then."""
    params: dict[str, Any] = {
        "tenant": tenant_id,
        "west": viewport.west,
        "south": viewport.south,
        "east": viewport.east,
        "north": viewport.north,
        "limit": MAX_MAP_POINTS + 1,
    }
    where = [
        "p.tenant_id = %(tenant)s",
        "point(p.lon, p.lat) <@ box(point(%(west)s, %(south)s), point(%(east)s, %(north)s))",
        *(filters or PointFilter()).where(params),
    ]
    needs_customer = filters is not None and filters.kind is not None
    source = (
        "service_points p JOIN customers c ON c.id = p.customer_id"
        if needs_customer
        else "service_points p"
    )
    cursor = await conn.execute(
        f"SELECT p.id FROM {source} WHERE {' AND '.join(where)} LIMIT %(limit)s", params
    )
    ids = [int(row[0]) for row in await cursor.fetchall()]
    if len(ids) <= MAX_MAP_POINTS:
        cursor = await conn.execute(
            "SELECT p.id, p.code, c.name, p.lat, p.lon, p.status, p.customer_class,"
            " p.position_needs_fix FROM service_points p JOIN customers c"
            " ON c.id = p.customer_id WHERE p.id = ANY(%s) ORDER BY p.id",
            (ids,),
        )
        rows = await cursor.fetchall()
        served: set[int] | None = None
        if collected_since is not None and collected_until is not None:
            served = await alerts.served_points(
                conn, tenant_id, ids, collected_since, collected_until
            )
        return {
            "clusters": [],
            "points": [
                {
                    "id": r[0],
                    "code": r[1],
                    "name": r[2],
                    "lat": r[3],
                    "lon": r[4],
                    "status": r[5],
                    "customer_class": r[6],
                    "needs_fix": r[7],
                    "collected": None if served is None else r[0] in served,
                }
                for r in rows
            ],
        }
    cell = viewport.cell_deg()
    params["cell_lon"] = cell
    # Cells square on the ground: a degree of latitude is longer than one of longitude.
    params["cell_lat"] = cell * math.cos(math.radians((viewport.south + viewport.north) / 2))
    cursor = await conn.execute(
        "SELECT count(*), avg(p.lat), avg(p.lon) FROM " + source + f" WHERE {' AND '.join(where)}"
        " GROUP BY floor(p.lon / %(cell_lon)s), floor(p.lat / %(cell_lat)s)",
        params,
    )
    return {
        "clusters": [
            {"count": int(count), "lat": float(lat), "lon": float(lon)}
            for count, lat, lon in await cursor.fetchall()
        ],
        "points": [],
    }
