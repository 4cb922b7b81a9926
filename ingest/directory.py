"""Which registered device a topic names: a cache in front of the devices table."""

from __future__ import annotations

from dataclasses import dataclass

import fleet
from sanitrack.clock import Clock
from storage import Pool


@dataclass(frozen=True, slots=True)
class DeviceRef:
    device_id: int
    tenant_id: int
    active: bool


class DeviceDirectory:
    """Known devices by (tenant slug, device slug). Unknown names are remembered
    for ``negative_ttl_s`` so a flood from an unregistered device costs one query."""

    def __init__(self, pool: Pool, clock: Clock, negative_ttl_s: float = 30.0) -> None:
        self._pool = pool
        self._clock = clock
        self._negative_ttl_s = negative_ttl_s
        self._known: dict[tuple[str, str], DeviceRef] = {}
        self._unknown: dict[tuple[str, str], float] = {}

    async def load_all(self) -> int:
        async with self._pool.connection() as conn:
            devices = await fleet.list_devices(conn)
        self._known = {
            (d.tenant_slug, d.slug): DeviceRef(d.id, d.tenant_id, d.active) for d in devices
        }
        return len(self._known)

    def cached(self, tenant: str, device: str) -> DeviceRef | bool | None:
        """The device, None if known to be unknown, False if a lookup is needed."""
        key = (tenant, device)
        ref = self._known.get(key)
        if ref is not None:
            return ref
        until = self._unknown.get(key)
        if until is not None and until > self._clock.monotonic():
            return None
        return False

    async def resolve(self, tenant: str, device: str) -> DeviceRef | None:
        cached = self.cached(tenant, device)
        if cached is not False:
            return cached if isinstance(cached, DeviceRef) else None
        async with self._pool.connection() as conn:
            login = await fleet.find_login(conn, fleet.device_username(tenant, device))
        key = (tenant, device)
        if login is None:
            if len(self._unknown) > 100_000:
                self._unknown.clear()
            self._unknown[key] = self._clock.monotonic() + self._negative_ttl_s
            return None
        ref = DeviceRef(login.device.id, login.device.tenant_id, login.device.active)
        self._known[key] = ref
        return ref

    def forget(self, tenant: str, device: str) -> None:
        """Drop a cached entry (after a device is created, revoked or re-activated)."""
        self._known.pop((tenant, device), None)
        self._unknown.pop((tenant, device), None)
