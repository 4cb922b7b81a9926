"""Values of the fleet: tenants, devices and the identity a device logs in with."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class DeviceKind(enum.StrEnum):
    TRUCK = "truck"
    PHONE = "phone"


class StaffRole(enum.StrEnum):
    DRIVER = "driver"
    COLLECTOR = "collector"
    CASHIER = "cashier"
    DISPATCHER = "dispatcher"
    ACCOUNTANT = "accountant"
    ADMIN = "admin"


class GeofenceKind(enum.StrEnum):
    DEPOT = "depot"
    TRANSFER_STATION = "transfer_station"
    LANDFILL = "landfill"
    RESTRICTED = "restricted"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Geofence:
    id: int
    tenant_id: int
    name: str
    kind: GeofenceKind
    ring: tuple[tuple[float, float], ...]  # (lat, lon), closed


@dataclass(frozen=True, slots=True)
class Tenant:
    id: int
    slug: str
    name: str


@dataclass(frozen=True, slots=True)
class Device:
    id: int
    tenant_id: int
    tenant_slug: str
    slug: str
    kind: DeviceKind
    vehicle_id: int | None
    staff_id: int | None
    active: bool


@dataclass(frozen=True, slots=True)
class DeviceLogin:
    """What the broker needs to check a device login."""

    device: Device
    credential_hash: str


@dataclass(frozen=True, slots=True)
class NewDevice:
    """A created device and its secret; the secret is shown once and never stored."""

    device: Device
    username: str
    secret: str


@dataclass(frozen=True, slots=True)
class Vehicle:
    id: int
    tenant_id: int
    code: str
    name: str
    capacity_kg: int | None
    in_service: bool = True  # False: broken down, kept out of plans until put back


@dataclass(frozen=True, slots=True)
class StaffMember:
    id: int
    tenant_id: int
    code: str
    full_name: str
    role: StaffRole
    phone: str | None
