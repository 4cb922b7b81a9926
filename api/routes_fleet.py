"""Vehicles, staff, devices (with their credentials) and geofences."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Body
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

import fleet
from api.context import Admin, Ctx, ObjectId, Operator, Reader

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["fleet"])
MAX_ID = 2**63 - 1


class NewVehicle(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=32, description="plate or fleet number")
    name: str = Field("", max_length=200)
    capacity_kg: int | None = Field(None, ge=1, le=100_000)


class InService(BaseModel):
    model_config = ConfigDict(extra="forbid")

    in_service: StrictBool = Field(description="true: plans use the truck again")


class NewStaff(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=32)
    full_name: str = Field(min_length=1, max_length=200)
    role: fleet.StaffRole
    phone: str | None = Field(None, max_length=32, pattern=r"^\+?[0-9 .-]{6,32}$")


class NewDeviceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: str = Field(pattern=r"^[a-z0-9-]{1,64}$")
    kind: fleet.DeviceKind
    vehicle_id: int | None = Field(None, ge=1, le=MAX_ID)
    staff_id: int | None = Field(None, ge=1, le=MAX_ID)


class PolygonGeometry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(pattern="^Polygon$")
    # One outer ring of [lon, lat] positions
    coordinates: list[list[tuple[float, float]]] = Field(min_length=1, max_length=1)

    @field_validator("coordinates")
    @classmethod
    def _ring(cls, value: list[list[tuple[float, float]]]) -> list[list[tuple[float, float]]]:
        ring = value[0]
        if not 3 <= len(ring) <= 10_000:
            raise ValueError("the ring needs 3 to 10,000 positions")
        for lon, lat in ring:
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                raise ValueError(f"({lon}, {lat}) is not a [lon, lat] position")
        return value


class NewGeofence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    kind: fleet.GeofenceKind
    area: PolygonGeometry


def device_json(device: fleet.Device) -> dict[str, Any]:
    return {
        "id": device.id,
        "slug": device.slug,
        "kind": device.kind.value,
        "vehicle_id": device.vehicle_id,
        "staff_id": device.staff_id,
        "active": device.active,
        "mqtt_username": fleet.device_username(device.tenant_slug, device.slug),
    }


def vehicle_json(vehicle: fleet.Vehicle, devices: list[fleet.Device]) -> dict[str, Any]:
    return {
        "id": vehicle.id,
        "code": vehicle.code,
        "name": vehicle.name,
        "capacity_kg": vehicle.capacity_kg,
        "in_service": vehicle.in_service,
        "devices": [
            {"id": d.id, "slug": d.slug, "kind": d.kind.value, "active": d.active}
            for d in devices
            if d.vehicle_id == vehicle.id
        ],
    }


def staff_json(member: fleet.StaffMember) -> dict[str, Any]:
    return {
        "id": member.id,
        "code": member.code,
        "full_name": member.full_name,
        "role": member.role.value,
        "phone": member.phone,
    }


def _credentials(new: fleet.NewDevice) -> dict[str, Any]:
    return {
        "device": device_json(new.device),
        "mqtt_username": new.username,
        # Shown once: only its hash is stored.
        "secret": new.secret,
    }


@router.get("/vehicles")
async def list_vehicles(principal: Reader, ctx: Ctx) -> list[dict[str, Any]]:
    async with ctx.pool.connection() as conn:
        vehicles = await fleet.list_vehicles(conn, principal.tenant_id)
        devices = await fleet.list_devices(conn, principal.tenant_id)
    return [vehicle_json(v, devices) for v in vehicles]


@router.get("/vehicles/{vehicle_id}")
async def get_vehicle(vehicle_id: ObjectId, principal: Reader, ctx: Ctx) -> dict[str, Any]:
    async with ctx.pool.connection() as conn:
        vehicle = await fleet.get_vehicle(conn, principal.tenant_id, vehicle_id)
        devices = await fleet.list_devices(conn, principal.tenant_id, vehicle_id=vehicle_id)
    return vehicle_json(vehicle, devices)


@router.put("/vehicles/{vehicle_id}/in-service")
async def set_in_service(
    vehicle_id: ObjectId, body: InService, principal: Operator, ctx: Ctx
) -> dict[str, Any]:
    """Put a truck back in service after a breakdown (or take it out): plans from now on
    use it (or not); the routes already planned stay as they are."""
    async with ctx.pool.connection() as conn:
        vehicle = await fleet.put_in_service(conn, principal.tenant_id, vehicle_id, body.in_service)
        devices = await fleet.list_devices(conn, principal.tenant_id, vehicle_id=vehicle_id)
    return vehicle_json(vehicle, devices)


@router.post("/vehicles", status_code=201)
async def create_vehicle(body: NewVehicle, principal: Admin, ctx: Ctx) -> dict[str, Any]:
    async with ctx.pool.connection() as conn:
        vehicle_id = await fleet.create_vehicle(
            conn, principal.tenant_id, body.code, body.name, body.capacity_kg
        )
        vehicle = await fleet.get_vehicle(conn, principal.tenant_id, vehicle_id)
    return vehicle_json(vehicle, [])


@router.get("/staff")
async def list_staff(principal: Reader, ctx: Ctx) -> list[dict[str, Any]]:
    async with ctx.pool.connection() as conn:
        return [staff_json(m) for m in await fleet.list_staff(conn, principal.tenant_id)]


@router.post("/staff", status_code=201)
async def create_staff(body: NewStaff, principal: Admin, ctx: Ctx) -> dict[str, Any]:
    async with ctx.pool.connection() as conn:
        staff_id = await fleet.create_staff(
            conn, principal.tenant_id, body.code, body.full_name, body.role, body.phone
        )
        return staff_json(await fleet.get_staff(conn, principal.tenant_id, staff_id))


@router.get("/devices")
async def list_devices(principal: Reader, ctx: Ctx) -> list[dict[str, Any]]:
    async with ctx.pool.connection() as conn:
        return [device_json(d) for d in await fleet.list_devices(conn, principal.tenant_id)]


@router.get("/devices/{device_id}")
async def get_device(device_id: ObjectId, principal: Reader, ctx: Ctx) -> dict[str, Any]:
    async with ctx.pool.connection() as conn:
        return device_json(await fleet.get_device(conn, principal.tenant_id, device_id))


@router.post("/devices", status_code=201)
async def create_device(body: NewDeviceRequest, principal: Admin, ctx: Ctx) -> dict[str, Any]:
    """Register a device; the answer holds its MQTT secret, which is never shown again."""
    async with ctx.pool.connection() as conn, conn.transaction():
        await fleet.check_links(
            conn, principal.tenant_id, body.kind, body.vehicle_id, body.staff_id
        )
        tenant = await fleet.get_tenant_by_id(conn, principal.tenant_id)
        new = await fleet.create_device(
            conn, tenant, body.slug, body.kind, vehicle_id=body.vehicle_id, staff_id=body.staff_id
        )
    return _credentials(new)


@router.post("/devices/{device_id}/rotate-secret")
async def rotate_secret(device_id: ObjectId, principal: Admin, ctx: Ctx) -> dict[str, Any]:
    """A new secret (shown once); the old one stops working at once and the device's
    session on the broker is closed, so it must log in again with the new one."""
    async with ctx.pool.connection() as conn:
        new = await fleet.rotate_device_secret(conn, principal.tenant_id, device_id)
    await _tell_broker(ctx, new.username)
    return _credentials(new)


@router.post("/devices/{device_id}/revoke")
async def revoke_device(device_id: ObjectId, principal: Admin, ctx: Ctx) -> dict[str, Any]:
    """The device can no longer log in; its live session is closed at once."""
    async with ctx.pool.connection() as conn:
        device = await fleet.set_device_active(conn, principal.tenant_id, device_id, False)
    await _tell_broker(ctx, fleet.device_username(device.tenant_slug, device.slug))
    return device_json(device)


@router.post("/devices/{device_id}/restore")
async def restore_device(device_id: ObjectId, principal: Admin, ctx: Ctx) -> dict[str, Any]:
    async with ctx.pool.connection() as conn:
        device = await fleet.set_device_active(conn, principal.tenant_id, device_id, True)
    await _tell_broker(ctx, fleet.device_username(device.tenant_slug, device.slug))
    return device_json(device)


async def _tell_broker(ctx: Ctx, username: str) -> None:
    if ctx.credentials_changed is None:
        log.warning(
            "device credentials changed but no broker is attached to this process;"
            " export them to the broker (sanitrack broker-export) and reload it",
            extra={"username": username},
        )
        return
    await ctx.credentials_changed(username)


@router.get("/geofences")
async def list_geofences(principal: Reader, ctx: Ctx) -> dict[str, Any]:
    """GeoJSON FeatureCollection of the tenant's geofences."""
    async with ctx.pool.connection() as conn:
        fences = await fleet.list_geofences(conn, principal.tenant_id)
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": fence.id,
                "geometry": fleet.polygon_geojson(fence.ring),
                "properties": {"id": fence.id, "name": fence.name, "kind": fence.kind.value},
            }
            for fence in fences
        ],
    }


@router.post("/geofences", status_code=201)
async def create_geofence(
    body: Annotated[NewGeofence, Body()], principal: Operator, ctx: Ctx
) -> dict[str, Any]:
    ring = [(lat, lon) for lon, lat in body.area.coordinates[0]]
    async with ctx.pool.connection() as conn:
        fence_id = await fleet.create_geofence(
            conn, principal.tenant_id, body.name, body.kind, ring
        )
    return {"id": fence_id, "name": body.name, "kind": body.kind.value}
