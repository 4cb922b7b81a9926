"""Reading and changing a tenant's fleet one object at a time, as the office does through
the API: every function is scoped to a tenant, and another tenant's id is NotFound."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection, errors
from psycopg.types.json import Jsonb

from fleet.credentials import device_username, hash_secret, new_secret
from fleet.errors import Conflict, InvalidValue, NotFound
from fleet.models import (
    Device,
    DeviceKind,
    GeofenceKind,
    NewDevice,
    StaffMember,
    StaffRole,
    Tenant,
    Vehicle,
)
from fleet.service import _DEVICE_SELECT, _device, polygon_geojson


async def get_tenant_by_id(conn: AsyncConnection[Any], tenant_id: int) -> Tenant:
    cursor = await conn.execute("SELECT id, slug, name FROM tenants WHERE id = %s", (tenant_id,))
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"tenant {tenant_id}")
    return Tenant(*row)


async def list_vehicles(conn: AsyncConnection[Any], tenant_id: int) -> list[Vehicle]:
    cursor = await conn.execute(
        "SELECT id, tenant_id, code, name, capacity_kg, in_service FROM vehicles"
        " WHERE tenant_id = %s ORDER BY code",
        (tenant_id,),
    )
    return [Vehicle(*row) for row in await cursor.fetchall()]


async def get_vehicle(conn: AsyncConnection[Any], tenant_id: int, vehicle_id: int) -> Vehicle:
    cursor = await conn.execute(
        "SELECT id, tenant_id, code, name, capacity_kg, in_service FROM vehicles"
        " WHERE tenant_id = %s AND id = %s",
        (tenant_id, vehicle_id),
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"vehicle {vehicle_id}")
    return Vehicle(*row)


async def vehicle_device_ids(
    conn: AsyncConnection[Any], tenant_id: int, vehicle_id: int
) -> list[int]:
    """The ids of the devices linked to a vehicle (of this tenant)."""
    cursor = await conn.execute(
        "SELECT id FROM devices WHERE tenant_id = %s AND vehicle_id = %s ORDER BY id",
        (tenant_id, vehicle_id),
    )
    return [int(row[0]) for row in await cursor.fetchall()]


async def list_staff(conn: AsyncConnection[Any], tenant_id: int) -> list[StaffMember]:
    cursor = await conn.execute(
        "SELECT id, tenant_id, code, full_name, role, phone FROM staff WHERE tenant_id = %s"
        " ORDER BY full_name, id",
        (tenant_id,),
    )
    return [
        StaffMember(row[0], row[1], row[2], row[3], StaffRole(row[4]), row[5])
        for row in await cursor.fetchall()
    ]


async def get_staff(conn: AsyncConnection[Any], tenant_id: int, staff_id: int) -> StaffMember:
    for member in await list_staff_by_id(conn, tenant_id, [staff_id]):
        return member
    raise NotFound(f"staff member {staff_id}")


async def list_staff_by_id(
    conn: AsyncConnection[Any], tenant_id: int, staff_ids: Sequence[int]
) -> list[StaffMember]:
    cursor = await conn.execute(
        "SELECT id, tenant_id, code, full_name, role, phone FROM staff"
        " WHERE tenant_id = %s AND id = ANY(%s)",
        (tenant_id, list(staff_ids)),
    )
    return [
        StaffMember(row[0], row[1], row[2], row[3], StaffRole(row[4]), row[5])
        for row in await cursor.fetchall()
    ]


async def get_device(conn: AsyncConnection[Any], tenant_id: int, device_id: int) -> Device:
    cursor = await conn.execute(
        _DEVICE_SELECT + " WHERE d.tenant_id = %s AND d.id = %s", (tenant_id, device_id)
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"device {device_id}")
    return _device(row)


async def check_links(
    conn: AsyncConnection[Any],
    tenant_id: int,
    kind: DeviceKind,
    vehicle_id: int | None,
    staff_id: int | None,
) -> None:
    """A device may link only to a vehicle or staff member of its own tenant."""
    if kind is DeviceKind.TRUCK and staff_id is not None:
        raise InvalidValue("staff_id: a truck unit links to a vehicle, not a staff member")
    if kind is DeviceKind.PHONE and vehicle_id is not None:
        raise InvalidValue("vehicle_id: a phone links to a staff member, not a vehicle")
    if vehicle_id is not None:
        await get_vehicle(conn, tenant_id, vehicle_id)
    if staff_id is not None:
        await get_staff(conn, tenant_id, staff_id)


async def rotate_device_secret(
    conn: AsyncConnection[Any], tenant_id: int, device_id: int
) -> NewDevice:
    """A new secret, shown once; the old one stops working at once (the caller tells the
    broker to forget the cached login and drop the session)."""
    secret = new_secret()
    cursor = await conn.execute(
        "UPDATE devices SET credential_hash = %s, credential_set_at = now()"
        " WHERE tenant_id = %s AND id = %s",
        (hash_secret(secret), tenant_id, device_id),
    )
    if cursor.rowcount != 1:
        raise NotFound(f"device {device_id}")
    device = await get_device(conn, tenant_id, device_id)
    return NewDevice(device, device_username(device.tenant_slug, device.slug), secret)


async def set_device_active(
    conn: AsyncConnection[Any], tenant_id: int, device_id: int, active: bool
) -> Device:
    cursor = await conn.execute(
        "UPDATE devices SET active = %s WHERE tenant_id = %s AND id = %s",
        (active, tenant_id, device_id),
    )
    if cursor.rowcount != 1:
        raise NotFound(f"device {device_id}")
    return await get_device(conn, tenant_id, device_id)


async def create_geofence(
    conn: AsyncConnection[Any],
    tenant_id: int,
    name: str,
    kind: GeofenceKind,
    ring: Sequence[tuple[float, float]],
) -> int:
    """A new geofence from a ``(lat, lon)`` ring; Conflict when the name is taken."""
    try:
        async with conn.transaction():
            cursor = await conn.execute(
                "INSERT INTO geofences (tenant_id, name, kind, area) VALUES (%s, %s, %s, %s)"
                " RETURNING id",
                (tenant_id, name, str(kind), Jsonb(polygon_geojson(ring))),
            )
    except errors.UniqueViolation:
        raise Conflict(f"name: a geofence {name!r} exists") from None
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])
