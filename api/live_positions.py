"""Positions for the live feed, from the ingest's in-order stream, named after their device.

``PositionSource.consume`` is an ingest consumer: it never waits. A fix of a device it does
not know yet (registered after start) is still shown, by id, and the catalog is reloaded
in the background so that the next fix carries the device's slug, kind and vehicle.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from typing import Any

import fleet
from api.live import LiveFeed
from api.live_messages import LivePosition
from ingest.fix import DeviceFix, DeviceItem
from sanitrack.clock import Clock
from storage import Pool, latest_positions_by_device

log = logging.getLogger(__name__)


class PositionSource:
    def __init__(
        self, feed: LiveFeed, pool: Pool, clock: Clock, reload_interval_s: float = 30.0
    ) -> None:
        self._feed = feed
        self._pool = pool
        self._clock = clock
        self._reload_interval_s = reload_interval_s
        self._devices: dict[int, fleet.Device] = {}
        self._reload_wanted = asyncio.Event()

    async def start(self) -> None:
        """Load the devices and seed the feed with each one's last stored position."""
        await self._reload()
        async with self._pool.connection() as conn:
            stored = await latest_positions_by_device(conn, self._clock.now())
        self._feed.seed_positions(
            self._position(device_id, tenant_id, fix_time, lat, lon, speed, heading)
            for device_id, tenant_id, fix_time, lat, lon, speed, heading in stored
        )

    async def run(self) -> None:
        """Reload the catalog every ``reload_interval_s``, or at once for an unknown device."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reload_wanted.wait(), self._reload_interval_s)
            self._reload_wanted.clear()
            try:
                await self._reload()
            except Exception:
                log.exception("live positions: reloading the devices failed; retrying later")

    def consume(self, item: DeviceItem) -> None:
        if not isinstance(item, DeviceFix) or item.jump or item.late:
            return
        fix = item.fix
        self._feed.publish_position(
            self._position(
                item.device_id,
                item.tenant_id,
                fix.time,
                fix.lat,
                fix.lon,
                fix.speed_kmh,
                fix.heading_deg,
            )
        )

    def publish_row(self, tenant_id: int, row: list[Any]) -> None:
        """A row announced by another process (api.positions_bus); ValueError or TypeError
        when it is malformed."""
        device_id, _, t_ms, lat, lon, speed_kmh, heading_deg = row
        self._feed.publish_position(
            self._position(
                int(device_id),
                tenant_id,
                dt.datetime.fromtimestamp(int(t_ms) / 1000, dt.UTC),
                float(lat),
                float(lon),
                None if speed_kmh is None else float(speed_kmh),
                None if heading_deg is None else float(heading_deg),
            )
        )

    def vehicle_of(self, device_id: int) -> int | None:
        device = self._devices.get(device_id)
        return device.vehicle_id if device else None

    def _position(
        self,
        device_id: int,
        tenant_id: int,
        fix_time: dt.datetime,
        lat: float,
        lon: float,
        speed_kmh: float | None,
        heading_deg: float | None,
    ) -> LivePosition:
        device = self._devices.get(device_id)
        if device is None:
            self._reload_wanted.set()
        return LivePosition(
            tenant_id=tenant_id,
            device_id=device_id,
            device=device.slug if device else str(device_id),
            kind=device.kind.value if device else "truck",
            vehicle_id=device.vehicle_id if device else None,
            staff_id=device.staff_id if device else None,
            time=fix_time,
            lat=lat,
            lon=lon,
            speed_kmh=speed_kmh,
            heading_deg=heading_deg,
        )

    async def _reload(self) -> None:
        async with self._pool.connection() as conn:
            devices = await fleet.list_devices(conn)
        self._devices = {device.id: device for device in devices}
