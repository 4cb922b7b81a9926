"""What the reports read besides positions, always through the owning package's public
functions (STYLE 10): fleet for a vehicle and its devices, planning for a route run, alerts
for the run's visits and alerts. Their errors become this package's here, at the boundary.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from psycopg import AsyncConnection

import alerts
import fleet
import planning
from reports.errors import NotFound

# alerts.list_alerts returns at most this many a call.
ALERTS_PAGE = 1000


async def vehicle_device_ids(
    conn: AsyncConnection[Any], tenant_id: int, vehicle_id: int
) -> list[int]:
    """The ids of the devices linked to the vehicle now (devices.vehicle_id)."""
    try:
        await fleet.get_vehicle(conn, tenant_id, vehicle_id)
    except fleet.NotFound:
        raise NotFound(f"vehicle {vehicle_id}") from None
    return await fleet.vehicle_device_ids(conn, tenant_id, vehicle_id)


async def route_run(conn: AsyncConnection[Any], tenant_id: int, run_id: int) -> planning.RouteRun:
    try:
        return await planning.get_route_run(conn, tenant_id, run_id)
    except planning.NotFound:
        raise NotFound(f"route run {run_id}") from None


async def run_alerts(conn: AsyncConnection[Any], tenant_id: int, run_id: int) -> list[alerts.Alert]:
    """Every alert of the run, oldest first, paging back through ``alerts.list_alerts``
    (newest first). A page ends inside an instant when alerts share it, so the next page
    starts at that instant again and what was seen is skipped."""
    found: dict[int, alerts.Alert] = {}
    until: dt.datetime | None = None
    while True:
        page = await alerts.list_alerts(
            conn, tenant_id, route_run_id=run_id, until=until, limit=ALERTS_PAGE
        )
        fresh = [alert for alert in page if alert.id not in found]
        found.update((alert.id, alert) for alert in fresh)
        if len(page) < ALERTS_PAGE or not fresh:
            break
        until = page[-1].opened_at + dt.timedelta(microseconds=1)
    return sorted(found.values(), key=lambda alert: (alert.opened_at, alert.id))
