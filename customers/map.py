"""The customer map: a viewport's points, or its clusters when it holds too many.

Clusters sit on a grid of square cells (in degrees) about 64 screen pixels wide at the
view's zoom: level ``zoom + 2``, a side of 360 / 2^level degrees. For wide views without
an area or collector filter they are read from ``service_point_cells`` (counted ahead per
cell, status and class, rebuilt when points change: ``rebuild_cells``); otherwise the
points in view are grouped as they stand.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

import alerts
from customers.search import PointFilter

MAX_MAP_POINTS = 2000
FINEST_CELL_LEVEL = 17  # ~300 m cells: views up to zoom 15 use the counted cells
COARSEST_CELL_LEVEL = 4
CELL_LEVELS_ABOVE_ZOOM = 2  # 256-pixel tiles / 4 = 64-pixel cells


@dataclass(frozen=True, slots=True)
class Viewport:
    south: float
    west: float
    north: float
    east: float
    zoom: int  # the web map's zoom level, 0-22

    @property
    def cell_level(self) -> int:
        return self.zoom + CELL_LEVELS_ABOVE_ZOOM

    def cell_deg(self) -> float:
        return 360.0 / float(2**self.cell_level)


async def map_view(
    conn: AsyncConnection[Any],
    tenant_id: int,
    viewport: Viewport,
    *,
    filters: PointFilter | None = None,
    collected_since: dt.datetime | None = None,
    collected_until: dt.datetime | None = None,
) -> dict[str, Any]:
    """``{"points": [...], "clusters": [...], "clusters_as_of": ...}``: the points when at
    most ``MAX_MAP_POINTS`` are in view, otherwise clusters (count and centre). With a
    collection window, each point says whether a stop visit served it then."""
    filters = filters or PointFilter()
    params: dict[str, Any] = {
        "tenant": tenant_id,
        "west": viewport.west,
        "south": viewport.south,
        "east": viewport.east,
        "north": viewport.north,
    }
    where = [
        "p.tenant_id = %(tenant)s",
        "point(p.lon, p.lat) <@ box(point(%(west)s, %(south)s), point(%(east)s, %(north)s))",
        *filters.where(params),
    ]
    source = (
        "service_points p JOIN customers c ON c.id = p.customer_id"
        if filters.kind is not None
        else "service_points p"
    )
    level = viewport.cell_level
    cells_usable = (
        level <= FINEST_CELL_LEVEL
        and filters.area_id is None
        and filters.collector_staff_id is None
        and filters.kind is None
    )
    if cells_usable:
        built = await _cells_built_at(conn, tenant_id)
        if built is not None:
            clusters = await _counted_clusters(conn, tenant_id, viewport, filters)
            if sum(c["count"] for c in clusters) > MAX_MAP_POINTS:
                return {"clusters": clusters, "points": [], "clusters_as_of": built}
    cursor = await conn.execute(
        f"SELECT p.id FROM {source} WHERE {' AND '.join(where)} LIMIT {MAX_MAP_POINTS + 1}",
        params,
    )
    ids = [int(row[0]) for row in await cursor.fetchall()]
    if len(ids) <= MAX_MAP_POINTS:
        return {
            "clusters": [],
            "points": await _points(conn, tenant_id, ids, collected_since, collected_until),
            "clusters_as_of": None,
        }
    params["cell"] = viewport.cell_deg()
    cursor = await conn.execute(
        f"SELECT count(*), avg(p.lat), avg(p.lon) FROM {source} WHERE {' AND '.join(where)}"
        " GROUP BY floor(p.lon / %(cell)s), floor(p.lat / %(cell)s)",
        params,
    )
    clusters = [
        {"count": int(count), "lat": float(lat), "lon": float(lon)}
        for count, lat, lon in await cursor.fetchall()
    ]
    return {"clusters": clusters, "points": [], "clusters_as_of": None}


async def _points(
    conn: AsyncConnection[Any],
    tenant_id: int,
    ids: list[int],
    collected_since: dt.datetime | None,
    collected_until: dt.datetime | None,
) -> list[dict[str, Any]]:
    cursor = await conn.execute(
        "SELECT p.id, p.code, c.name, p.lat, p.lon, p.status, p.customer_class,"
        " p.position_needs_fix FROM service_points p JOIN customers c"
        " ON c.id = p.customer_id WHERE p.id = ANY(%s) ORDER BY p.id",
        (ids,),
    )
    rows = await cursor.fetchall()
    served: set[int] | None = None
    if collected_since is not None and collected_until is not None:
        served = await alerts.served_points(conn, tenant_id, ids, collected_since, collected_until)
    return [
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
    ]


async def _cells_built_at(conn: AsyncConnection[Any], tenant_id: int) -> dt.datetime | None:
    cursor = await conn.execute(
        "SELECT built_at FROM service_point_cells_state WHERE tenant_id = %s", (tenant_id,)
    )
    row = await cursor.fetchone()
    return row[0] if row is not None else None


async def _counted_clusters(
    conn: AsyncConnection[Any], tenant_id: int, viewport: Viewport, filters: PointFilter
) -> list[dict[str, Any]]:
    level = max(viewport.cell_level, COARSEST_CELL_LEVEL)
    per_deg = 2**level / 360.0
    params: dict[str, Any] = {
        "tenant": tenant_id,
        "level": level,
        "x0": int(viewport.west * per_deg // 1),
        "x1": int(viewport.east * per_deg // 1),
        "y0": int(viewport.south * per_deg // 1),
        "y1": int(viewport.north * per_deg // 1),
    }
    where = [
        "tenant_id = %(tenant)s",
        "level = %(level)s",
        "cx BETWEEN %(x0)s AND %(x1)s",
        "cy BETWEEN %(y0)s AND %(y1)s",
    ]
    if filters.status is not None:
        params["status"] = str(filters.status)
        where.append("status = %(status)s")
    if filters.customer_class is not None:
        params["class"] = filters.customer_class
        where.append("customer_class = %(class)s")
    cursor = await conn.execute(
        "SELECT sum(points), sum(lat_sum) / sum(points), sum(lon_sum) / sum(points)"
        f" FROM service_point_cells WHERE {' AND '.join(where)} GROUP BY cx, cy",
        params,
    )
    return [
        {"count": int(count), "lat": float(lat), "lon": float(lon)}
        for count, lat, lon in await cursor.fetchall()
    ]


@dataclass(frozen=True, slots=True)
class CellsState:
    built_at: dt.datetime | None  # None: never counted
    stale_since: dt.datetime | None  # None: no point changed since they were counted
    has_points: bool


async def cells_state(conn: AsyncConnection[Any], tenant_id: int) -> CellsState:
    cursor = await conn.execute(
        "SELECT s.built_at, s.stale_since,"
        " EXISTS (SELECT 1 FROM service_points p WHERE p.tenant_id = t.id)"
        " FROM tenants t LEFT JOIN service_point_cells_state s ON s.tenant_id = t.id"
        " WHERE t.id = %s",
        (tenant_id,),
    )
    row = await cursor.fetchone()
    if row is None:
        return CellsState(None, None, False)
    return CellsState(row[0], row[1], bool(row[2]))


async def rebuild_cells(conn: AsyncConnection[Any], tenant_id: int, now: dt.datetime) -> int:
    """Count the tenant's points per cell at every level again; how many cells there are.

    The finest level is counted from the points (one pass), each coarser one from the level
    below. Runs in the caller's transaction; the map keeps reading the old cells until it
    commits. A point written while this runs, by a transaction that found the cells stale
    already, may be missed until the next change or ``map_cells_max_age_s``: cluster
    counts are a view, not a ledger.
    """
    await conn.execute(
        "INSERT INTO service_point_cells_state (tenant_id) VALUES (%s)"
        " ON CONFLICT (tenant_id) DO NOTHING",
        (tenant_id,),
    )
    await conn.execute(
        "SELECT 1 FROM service_point_cells_state WHERE tenant_id = %s FOR UPDATE", (tenant_id,)
    )
    await conn.execute("DELETE FROM service_point_cells WHERE tenant_id = %s", (tenant_id,))
    per_deg = 2**FINEST_CELL_LEVEL / 360.0
    await conn.execute(
        "INSERT INTO service_point_cells (tenant_id, level, cx, cy, status, customer_class,"
        " points, lat_sum, lon_sum)"
        " SELECT %(tenant)s, %(level)s, floor(lon * %(per_deg)s)::int,"
        " floor(lat * %(per_deg)s)::int, status, customer_class, count(*), sum(lat), sum(lon)"
        " FROM service_points WHERE tenant_id = %(tenant)s GROUP BY 3, 4, 5, 6",
        {"tenant": tenant_id, "level": FINEST_CELL_LEVEL, "per_deg": per_deg},
    )
    for level in range(FINEST_CELL_LEVEL - 1, COARSEST_CELL_LEVEL - 1, -1):
        await conn.execute(
            "INSERT INTO service_point_cells (tenant_id, level, cx, cy, status, customer_class,"
            " points, lat_sum, lon_sum)"
            " SELECT tenant_id, %(level)s, cx >> 1, cy >> 1, status, customer_class,"
            " sum(points), sum(lat_sum), sum(lon_sum) FROM service_point_cells"
            " WHERE tenant_id = %(tenant)s AND level = %(finer)s GROUP BY 1, 2, 3, 4, 5, 6",
            {"tenant": tenant_id, "level": level, "finer": level + 1},
        )
    await conn.execute(
        "UPDATE service_point_cells_state SET built_at = %s, stale_since = NULL"
        " WHERE tenant_id = %s",
        (now, tenant_id),
    )
    cursor = await conn.execute(
        "SELECT count(*) FROM service_point_cells WHERE tenant_id = %s", (tenant_id,)
    )
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])
