"""Tenants, vehicles, staff and the devices that report their positions."""

from fleet.credentials import device_username, hash_secret, parse_username, verify_secret
from fleet.errors import Conflict, FleetError, InvalidValue, NotFound
from fleet.models import Device, DeviceKind, DeviceLogin, NewDevice, StaffRole, Tenant
from fleet.service import (
    create_device,
    create_staff,
    create_vehicle,
    ensure_tenant,
    find_login,
    get_tenant,
    list_devices,
    list_logins,
    rotate_secret,
    set_active,
)

__all__ = [
    "Conflict",
    "Device",
    "DeviceKind",
    "DeviceLogin",
    "FleetError",
    "InvalidValue",
    "NewDevice",
    "NotFound",
    "StaffRole",
    "Tenant",
    "create_device",
    "create_staff",
    "create_vehicle",
    "device_username",
    "ensure_tenant",
    "find_login",
    "get_tenant",
    "hash_secret",
    "list_devices",
    "list_logins",
    "parse_username",
    "rotate_secret",
    "set_active",
    "verify_secret",
]
