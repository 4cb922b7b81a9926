"""What the route planner needs from the fleet: trucks in service with their shifts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

from fleet.errors import NotFound
from fleet.models import Vehicle


@dataclass(frozen=True, slots=True)
class TruckShift:
    vehicle_id: int
    code: str
    capacity_kg: int
    capacity_m3: float | None
    shift_start: dt.time
    shift_end: dt.time
    max_route_s: int | None
    break_start: dt.time | None
    break_end: dt.time | None
    break_s: int | None
    depot_geofence_id: int | None
    driver_staff_id: int | None
    truck_device_ids: tuple[int, ...]


async def trucks_in_service(conn: AsyncConnection[Any], tenant_id: int) -> list[TruckShift]:
    """Vehicles in service with a capacity, by code; their truck devices for route commands."""
    cursor = await conn.execute(
        "SELECT v.id, v.code, v.capacity_kg, v.capacity_m3, v.shift_start, v.shift_end,"
        " v.max_route_s, v.break_start, v.break_end, v.break_s, v.depot_geofence_id,"
        " v.driver_staff_id,"
        " coalesce((SELECT array_agg(d.id ORDER BY d.id) FROM devices d"
        "   WHERE d.vehicle_id = v.id AND d.kind = 'truck' AND d.active), '{}')"
        " FROM vehicles v WHERE v.tenant_id = %s AND v.in_service AND v.capacity_kg IS NOT NULL"
        " ORDER BY v.code",
        (tenant_id,),
    )
    return [
        TruckShift(
            vehicle_id=row[0],
            code=row[1],
            capacity_kg=row[2],
            capacity_m3=float(row[3]) if row[3] is not None else None,
            shift_start=row[4],
            shift_end=row[5],
            max_route_s=row[6],
            break_start=row[7],
            break_end=row[8],
            break_s=row[9],
            depot_geofence_id=row[10],
            driver_staff_id=row[11],
            truck_device_ids=tuple(row[12]),
        )
        for row in await cursor.fetchall()
    ]


async def set_in_service(
    conn: AsyncConnection[Any], tenant_id: int, vehicle_id: int, in_service: bool
) -> bool:
    """Take a truck out of service (a breakdown) or back; False when it does not exist."""
    cursor = await conn.execute(
        "UPDATE vehicles SET in_service = %s WHERE tenant_id = %s AND id = %s",
        (in_service, tenant_id, vehicle_id),
    )
    return cursor.rowcount == 1


async def put_in_service(
    conn: AsyncConnection[Any], tenant_id: int, vehicle_id: int, in_service: bool
) -> Vehicle:
    """A truck put back in service after a breakdown (or taken out), as it now is."""
    cursor = await conn.execute(
        "UPDATE vehicles SET in_service = %s WHERE tenant_id = %s AND id = %s"
        " RETURNING id, tenant_id, code, name, capacity_kg, in_service",
        (in_service, tenant_id, vehicle_id),
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"vehicle {vehicle_id}")
    return Vehicle(*row)


async def set_truck_shift(
    conn: AsyncConnection[Any],
    tenant_id: int,
    vehicle_id: int,
    *,
    depot_geofence_id: int | None = None,
    driver_staff_id: int | None = None,
    capacity_m3: float | None = None,
    shift: tuple[dt.time, dt.time] | None = None,
) -> None:
    """Set what planning reads about a truck (only the arguments given change)."""
    await conn.execute(
        "UPDATE vehicles SET depot_geofence_id = coalesce(%s, depot_geofence_id),"
        " driver_staff_id = coalesce(%s, driver_staff_id),"
        " capacity_m3 = coalesce(%s, capacity_m3),"
        " shift_start = coalesce(%s, shift_start), shift_end = coalesce(%s, shift_end)"
        " WHERE tenant_id = %s AND id = %s",
        (
            depot_geofence_id,
            driver_staff_id,
            capacity_m3,
            shift[0] if shift else None,
            shift[1] if shift else None,
            tenant_id,
            vehicle_id,
        ),
    )
