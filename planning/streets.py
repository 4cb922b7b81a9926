"""A tenant's street network as map lines: the live map draws it when no tile server is
configured (offline), and it bounds the map."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from planning.errors import InvalidValue


class StreetKind(enum.StrEnum):
    ARTERIAL = "arterial"
    PRIMARY = "primary"
    SECONDARY = "secondary"
    RESIDENTIAL = "residential"
    ALLEY = "alley"
    OTHER = "other"


class StreetSource(enum.StrEnum):
    SIMULATOR = "simulator"
    OSM = "osm"
    IMPORT = "import"


@dataclass(frozen=True, slots=True)
class MapStreet:
    name: str
    kind: StreetKind
    one_way: bool
    line: tuple[tuple[float, float], ...]  # [lon, lat] positions, GeoJSON order
    speed_kmh: float | None = None  # free-flow speed; None: the kind's default


async def save_street_map(
    conn: AsyncConnection[Any],
    tenant_id: int,
    streets: Sequence[MapStreet],
    source: StreetSource,
) -> int:
    """Replace the tenant's streets from ``source`` with ``streets``; how many were saved."""
    for n, street in enumerate(streets):
        if len(street.line) < 2:
            raise InvalidValue(f"streets[{n}].line: needs at least 2 positions")
        for lon, lat in street.line:
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                raise InvalidValue(f"streets[{n}].line: ({lon}, {lat}) is not [lon, lat]")
    async with conn.transaction():
        await conn.execute(
            "DELETE FROM street_map WHERE tenant_id = %s AND source = %s",
            (tenant_id, str(source)),
        )
        async with conn.cursor() as cursor:
            await cursor.executemany(
                "INSERT INTO street_map (tenant_id, name, kind, one_way, line, source, speed_kmh)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        tenant_id,
                        street.name[:200],
                        str(street.kind),
                        street.one_way,
                        Jsonb({"type": "LineString", "coordinates": street.line}),
                        str(source),
                        street.speed_kmh,
                    )
                    for street in streets
                ],
            )
    return len(streets)


async def street_map_geojson(conn: AsyncConnection[Any], tenant_id: int) -> bytes:
    """The tenant's streets as a GeoJSON FeatureCollection, built by PostgreSQL as text
    (thousands of lines: no per-row Python objects)."""
    cursor = await conn.execute(
        "SELECT json_build_object('type', 'FeatureCollection', 'features',"
        " coalesce(json_agg(json_build_object('type', 'Feature', 'geometry', line,"
        " 'properties', json_build_object('name', name, 'kind', kind, 'one_way', one_way))"
        " ORDER BY id), '[]'::json))::text FROM street_map WHERE tenant_id = %s",
        (tenant_id,),
    )
    row = await cursor.fetchone()
    assert row is not None
    return str(row[0]).encode()


async def street_map_bounds(
    conn: AsyncConnection[Any], tenant_id: int
) -> tuple[float, float, float, float] | None:
    """(south, west, north, east) of the tenant's streets, geofences and today's route
    stops; None when it has none of them."""
    cursor = await conn.execute(
        "WITH points AS ("
        "  SELECT (p ->> 0)::float8 AS lon, (p ->> 1)::float8 AS lat FROM street_map s,"
        "    jsonb_array_elements(s.line -> 'coordinates') p WHERE s.tenant_id = %s"
        "  UNION ALL"
        "  SELECT (p ->> 0)::float8, (p ->> 1)::float8 FROM geofences g,"
        "    jsonb_array_elements(g.area -> 'coordinates' -> 0) p WHERE g.tenant_id = %s)"
        " SELECT min(lat), min(lon), max(lat), max(lon) FROM points",
        (tenant_id, tenant_id),
    )
    row = await cursor.fetchone()
    if row is None or row[0] is None:
        return None
    return float(row[0]), float(row[1]), float(row[2]), float(row[3])


async def map_streets(conn: AsyncConnection[Any], tenant_id: int) -> list[MapStreet]:
    """The tenant's streets (every source), for geocoding addresses against their names."""
    cursor = await conn.execute(
        "SELECT name, kind, one_way, line -> 'coordinates' FROM street_map"
        " WHERE tenant_id = %s ORDER BY id",
        (tenant_id,),
    )
    return [
        MapStreet(name, StreetKind(kind), one_way, tuple((p[0], p[1]) for p in line))
        for name, kind, one_way, line in await cursor.fetchall()
    ]


async def street_rows(conn: AsyncConnection[Any], tenant_id: int) -> list[tuple[int, MapStreet]]:
    """The tenant's streets with their street_map ids, for routing (ids name closed roads)."""
    cursor = await conn.execute(
        "SELECT id, name, kind, one_way, line -> 'coordinates', speed_kmh FROM street_map"
        " WHERE tenant_id = %s ORDER BY id",
        (tenant_id,),
    )
    return [
        (
            street_id,
            MapStreet(name, StreetKind(kind), one_way, tuple((p[0], p[1]) for p in line), speed),
        )
        for street_id, name, kind, one_way, line, speed in await cursor.fetchall()
    ]
