"""Fleet operations: the only code that reads or writes tenants, vehicles, staff and devices.

Every function takes an open connection; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection, errors, sql
from psycopg.types.json import Jsonb

from fleet.credentials import SLUG, device_username, hash_secret, new_secret, parse_username
from fleet.errors import Conflict, InvalidValue, NotFound
from fleet.models import (
    Device,
    DeviceKind,
    DeviceLogin,
    Geofence,
    GeofenceKind,
    NewDevice,
    StaffRole,
    Tenant,
)

_DEVICE_SELECT = (
    "SELECT d.id, d.tenant_id, t.slug, d.slug, d.kind, d.vehicle_id, d.staff_id, d.active,"
    " d.credential_hash FROM devices d JOIN tenants t ON t.id = d.tenant_id"
)


def _slug(field: str, value: str) -> str:
    if not SLUG.match(value):
        raise InvalidValue(f"{field}={value!r}: must be 1-64 characters of a-z, 0-9 and '-'")
    return value


def _device(row: tuple[Any, ...]) -> Device:
    return Device(
        id=row[0],
        tenant_id=row[1],
        tenant_slug=row[2],
        slug=row[3],
        kind=DeviceKind(row[4]),
        vehicle_id=row[5],
        staff_id=row[6],
        active=row[7],
    )


async def ensure_tenant(conn: AsyncConnection[Any], slug: str, name: str) -> Tenant:
    """The tenant with this slug, created if missing."""
    _slug("tenant", slug)
    cursor = await conn.execute(
        "INSERT INTO tenants (slug, name) VALUES (%s, %s)"
        " ON CONFLICT (slug) DO UPDATE SET slug = EXCLUDED.slug RETURNING id, slug, name",
        (slug, name),
    )
    row = await cursor.fetchone()
    assert row is not None
    return Tenant(*row)


async def get_tenant(conn: AsyncConnection[Any], slug: str) -> Tenant:
    cursor = await conn.execute("SELECT id, slug, name FROM tenants WHERE slug = %s", (slug,))
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"tenant {slug!r}")
    return Tenant(*row)


async def create_vehicle(
    conn: AsyncConnection[Any],
    tenant_id: int,
    code: str,
    name: str = "",
    capacity_kg: int | None = None,
) -> int:
    try:
        async with conn.transaction():
            cursor = await conn.execute(
                "INSERT INTO vehicles (tenant_id, code, name, capacity_kg)"
                " VALUES (%s, %s, %s, %s) RETURNING id",
                (tenant_id, code, name, capacity_kg),
            )
    except errors.UniqueViolation:
        raise Conflict(f"vehicle {code!r} exists") from None
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def ensure_vehicle(
    conn: AsyncConnection[Any],
    tenant_id: int,
    code: str,
    name: str = "",
    capacity_kg: int | None = None,
) -> int:
    """The vehicle with this code, created if missing (an existing one is left as it is)."""
    existing = await _id_by_code(conn, "vehicles", tenant_id, code)
    if existing is not None:
        return existing
    return await create_vehicle(conn, tenant_id, code, name, capacity_kg)


async def ensure_staff(
    conn: AsyncConnection[Any],
    tenant_id: int,
    code: str,
    full_name: str,
    role: StaffRole,
    phone: str | None = None,
) -> int:
    """The staff member with this code, created if missing."""
    existing = await _id_by_code(conn, "staff", tenant_id, code)
    if existing is not None:
        return existing
    return await create_staff(conn, tenant_id, code, full_name, role, phone)


async def _id_by_code(
    conn: AsyncConnection[Any], table: str, tenant_id: int, code: str
) -> int | None:
    cursor = await conn.execute(
        sql.SQL("SELECT id FROM {} WHERE tenant_id = %s AND code = %s").format(
            sql.Identifier(table)
        ),
        (tenant_id, code),
    )
    row = await cursor.fetchone()
    return None if row is None else int(row[0])


async def create_staff(
    conn: AsyncConnection[Any],
    tenant_id: int,
    code: str,
    full_name: str,
    role: StaffRole,
    phone: str | None = None,
) -> int:
    try:
        async with conn.transaction():
            cursor = await conn.execute(
                "INSERT INTO staff (tenant_id, code, full_name, role, phone)"
                " VALUES (%s, %s, %s, %s, %s) RETURNING id",
                (tenant_id, code, full_name, str(role), phone),
            )
    except errors.UniqueViolation:
        raise Conflict(f"staff member {code!r} exists") from None
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def create_device(
    conn: AsyncConnection[Any],
    tenant: Tenant,
    slug: str,
    kind: DeviceKind,
    *,
    vehicle_id: int | None = None,
    staff_id: int | None = None,
) -> NewDevice:
    """Register a device; the returned secret is not stored and cannot be shown again."""
    _slug("device", slug)
    if kind is DeviceKind.TRUCK and staff_id is not None:
        raise InvalidValue("staff_id: a truck unit links to a vehicle, not a staff member")
    if kind is DeviceKind.PHONE and vehicle_id is not None:
        raise InvalidValue("vehicle_id: a phone links to a staff member, not a vehicle")
    secret = new_secret()
    try:
        async with conn.transaction():
            cursor = await conn.execute(
                "INSERT INTO devices (tenant_id, slug, kind, vehicle_id, staff_id, credential_hash)"
                " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                (tenant.id, slug, str(kind), vehicle_id, staff_id, hash_secret(secret)),
            )
    except errors.UniqueViolation:
        raise Conflict(f"device {slug!r} exists in tenant {tenant.slug!r}") from None
    except errors.ForeignKeyViolation:
        raise NotFound("vehicle or staff member of the device") from None
    row = await cursor.fetchone()
    assert row is not None
    device = Device(row[0], tenant.id, tenant.slug, slug, kind, vehicle_id, staff_id, True)
    return NewDevice(device, device_username(tenant.slug, slug), secret)


async def rotate_secret(conn: AsyncConnection[Any], device_id: int) -> str:
    """Give a device a new secret; the old one stops working at its next login."""
    secret = new_secret()
    cursor = await conn.execute(
        "UPDATE devices SET credential_hash = %s, credential_set_at = now() WHERE id = %s",
        (hash_secret(secret), device_id),
    )
    if cursor.rowcount != 1:
        raise NotFound(f"device {device_id}")
    return secret


async def set_active(conn: AsyncConnection[Any], device_id: int, active: bool) -> None:
    cursor = await conn.execute("UPDATE devices SET active = %s WHERE id = %s", (active, device_id))
    if cursor.rowcount != 1:
        raise NotFound(f"device {device_id}")


async def find_login(conn: AsyncConnection[Any], username: str) -> DeviceLogin | None:
    """The device behind an MQTT username, with its credential hash."""
    parsed = parse_username(username)
    if parsed is None:
        return None
    tenant, slug = parsed
    cursor = await conn.execute(
        _DEVICE_SELECT + " WHERE t.slug = %s AND d.slug = %s", (tenant, slug)
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    return DeviceLogin(_device(row), row[8])


async def list_devices(
    conn: AsyncConnection[Any], tenant_id: int | None = None, *, vehicle_id: int | None = None
) -> list[Device]:
    """Every device (of the tenant; of the vehicle too when ``vehicle_id`` is given)."""
    if tenant_id is None:
        cursor = await conn.execute(_DEVICE_SELECT + " ORDER BY t.slug, d.slug")
    elif vehicle_id is None:
        cursor = await conn.execute(
            _DEVICE_SELECT + " WHERE d.tenant_id = %s ORDER BY d.slug", (tenant_id,)
        )
    else:
        cursor = await conn.execute(
            _DEVICE_SELECT + " WHERE d.tenant_id = %s AND d.vehicle_id = %s ORDER BY d.slug",
            (tenant_id, vehicle_id),
        )
    return [_device(row) for row in await cursor.fetchall()]


async def list_logins(conn: AsyncConnection[Any]) -> list[DeviceLogin]:
    """Every active device with its hash, for exporting a Mosquitto password file."""
    cursor = await conn.execute(_DEVICE_SELECT + " WHERE d.active ORDER BY t.slug, d.slug")
    return [DeviceLogin(_device(row), row[8]) for row in await cursor.fetchall()]


async def ensure_geofence(
    conn: AsyncConnection[Any],
    tenant_id: int,
    name: str,
    kind: GeofenceKind,
    ring: Sequence[tuple[float, float]],
) -> int:
    """The geofence with this name, created (or its area and kind updated) from a
    ``(lat, lon)`` ring."""
    area = polygon_geojson(ring)
    cursor = await conn.execute(
        "INSERT INTO geofences (tenant_id, name, kind, area) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (tenant_id, name) DO UPDATE SET kind = EXCLUDED.kind, area = EXCLUDED.area"
        " RETURNING id",
        (tenant_id, name, str(kind), Jsonb(area)),
    )
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def list_geofences(conn: AsyncConnection[Any], tenant_id: int) -> list[Geofence]:
    cursor = await conn.execute(
        "SELECT id, tenant_id, name, kind, area FROM geofences WHERE tenant_id = %s ORDER BY name",
        (tenant_id,),
    )
    return [
        Geofence(
            id=row[0],
            tenant_id=row[1],
            name=row[2],
            kind=GeofenceKind(row[3]),
            ring=tuple((lat, lon) for lon, lat in row[4]["coordinates"][0]),
        )
        for row in await cursor.fetchall()
    ]


def polygon_geojson(ring: Sequence[tuple[float, float]]) -> dict[str, Any]:
    """A GeoJSON Polygon from a ``(lat, lon)`` ring, closed if it is not."""
    if len(ring) < 3:
        raise InvalidValue(f"geofence ring: {len(ring)} positions, a polygon needs at least 3")
    for lat, lon in ring:
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise InvalidValue(f"geofence ring: ({lat}, {lon}) is not a latitude/longitude")
    positions = [[lon, lat] for lat, lon in ring]
    if positions[0] != positions[-1]:
        positions.append(positions[0])
    return {"type": "Polygon", "coordinates": [positions]}


async def list_tenants(conn: AsyncConnection[Any]) -> list[Tenant]:
    cursor = await conn.execute("SELECT id, slug, name FROM tenants ORDER BY id")
    return [Tenant(row[0], row[1], row[2]) for row in await cursor.fetchall()]


async def vehicle_codes(conn: AsyncConnection[Any], tenant_id: int) -> dict[int, str]:
    """Vehicle id -> its plate or fleet number (what people call it)."""
    cursor = await conn.execute("SELECT id, code FROM vehicles WHERE tenant_id = %s", (tenant_id,))
    return {row[0]: row[1] for row in await cursor.fetchall()}


async def staff_names(conn: AsyncConnection[Any], tenant_id: int) -> dict[int, str]:
    cursor = await conn.execute(
        "SELECT id, full_name FROM staff WHERE tenant_id = %s", (tenant_id,)
    )
    return {row[0]: row[1] for row in await cursor.fetchall()}


async def fleet_fingerprint(conn: AsyncConnection[Any], tenant_id: int) -> str:
    """A digest of a tenant's devices (and what they are linked to) and geofences: readers
    that keep them in memory reload only when it changes."""
    cursor = await conn.execute(
        "SELECT md5(coalesce((SELECT string_agg(id || ':' || active || ':'"
        " || coalesce(vehicle_id, 0) || ':' || coalesce(staff_id, 0), ',' ORDER BY id)"
        " FROM devices WHERE tenant_id = %s), '') || '|' || coalesce((SELECT"
        " string_agg(id || ':' || md5(area::text) || ':' || kind, ',' ORDER BY id)"
        " FROM geofences WHERE tenant_id = %s), ''))",
        (tenant_id, tenant_id),
    )
    row = await cursor.fetchone()
    return str(row[0]) if row else ""
