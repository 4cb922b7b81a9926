"""The rules' alert writer: a lone alert is written at once, a burst is gathered into one
transaction per ``write_interval_s`` (a depot's morning exodus would otherwise be thousands
of small transactions)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt

import alerts
import fleet
from alerts import AlertKind
from ingest import DeviceFix, Fix
from rules.service import RulesMetrics, RulesService
from sanitrack.settings import RulesSettings
from storage import Pool
from tests.rules.test_recovery import at, clock, latlon, make_run
from tests.support import wait_for

INTERVAL_S = 1.0


async def test_a_burst_of_alerts_is_written_in_one_transaction_after_a_lone_one(
    pool: Pool,
) -> None:
    device, _ = await make_run(pool)
    async with pool.connection() as conn:
        tenant = await fleet.get_tenant(conn, device.tenant)
    metrics = RulesMetrics()
    service = RulesService(
        RulesSettings(write_interval_s=INTERVAL_S), pool, clock=clock(), metrics=metrics
    )
    await service.start()

    def jump(n: int) -> DeviceFix:
        lat, lon = latlon(5000.0 + 100 * n, 0.0)
        fix = Fix(time=at(5 * n), lat=lat, lon=lon)
        return DeviceFix(device.device_id, tenant.id, fix, dt.datetime.now(dt.UTC), jump=True)

    def batches() -> float:
        value = metrics.registry.get_sample_value("sanitrack_rules_write_seconds_count")
        return value or 0.0

    async def jumps_stored() -> int:
        async with pool.connection() as conn:
            found = await alerts.list_alerts(conn, tenant.id, kinds=[AlertKind.GPS_JUMP])
        return len(found)

    writer = asyncio.create_task(service.run(), name="rules")
    try:
        service.consume(jump(1))
        assert await wait_for(jumps_stored, 1, timeout_s=INTERVAL_S * 0.8) == 1  # at once
        for n in range(2, 12):  # ten more within the interval: gathered
            service.consume(jump(n))
            await asyncio.sleep(0.02)
        assert await wait_for(jumps_stored, 11) == 11
    finally:
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
    assert batches() == 2
