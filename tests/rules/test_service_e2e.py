"""The rules engine in its process: a simulated day with route faults goes through the real
broker and ingest into the engine; the alerts land in PostgreSQL, match the simulator's
ground truth, reach the driver's phone topic, and a restart replays without duplicating."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import math
import time
import uuid
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import aiomqtt
import orjson

import alerts
import simulator
from alerts import AlertKind
from ingest import IngestService
from rules.service import RulesService
from sanitrack.settings import RulesSettings
from simulator.faults import FaultKind, FaultRates
from storage import Pool
from tests.support import BrokerUnderTest, ingest_settings

SPEEDUP = 200.0
DAY_S = 2400.0  # the first 40 minutes of the trucks' runs
RATES = FaultRates(
    wrong_route_per_vehicle_hour=6,
    wrong_route_never_back_share=0,
    skipped_stop_share=0.3,
    late_run_share=0,
    gps_jump_share=0.01,
    dropout_per_device_hour=0,
    store_and_forward_per_phone_hour=0,
    duplicate_share=0.01,
    out_of_order_share=0.01,
    clock_skew_device_share=0,
    malformed_share=0.005,
    wrong_credentials_per_device_hour=0,
)


class ScenarioClock:
    """Scenario time running ``speedup`` times faster than the wall, from ``start``."""

    def __init__(self, start: dt.datetime, speedup: float) -> None:
        self._start = start
        self._speedup = speedup
        self._began = time.monotonic()

    def restart(self) -> None:
        """Second 0 of the scenario is now (when the simulator starts playing)."""
        self._began = time.monotonic()

    def now(self) -> dt.datetime:
        elapsed = (time.monotonic() - self._began) * self._speedup
        return self._start + dt.timedelta(seconds=elapsed)

    def monotonic(self) -> float:
        return time.monotonic()


@contextlib.asynccontextmanager
async def running(
    task_coroutine: Coroutine[Any, Any, None], name: str
) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(task_coroutine, name=name)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_faulty_day_gives_its_alerts_in_the_database_and_on_the_staff_topic(
    pool: Pool, broker: BrokerUnderTest
) -> None:
    tenant = f"rules-{uuid.uuid4().hex[:8]}"
    # In the past, so that fixes sent faster than real time are never "in the future".
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=DAY_S + 600)
    config = simulator.ScenarioConfig(
        seed=10, vehicles=3, phones=3, interval_s=5, stops_per_run=15, tenant=tenant, faults=RATES
    )
    scenario = simulator.build_scenario(config, start, DAY_S)
    registered = await simulator.register_scenario(pool, scenario)
    settings = RulesSettings(sweep_interval_s=0.05)
    clock = ScenarioClock(start, SPEEDUP)
    rules = RulesService(settings, pool, clock=clock)
    endpoint = broker.service_endpoint()
    received: list[tuple[str, dict[str, object]]] = []

    async def listen(ready: asyncio.Event) -> None:
        async with aiomqtt.Client(
            broker.host,
            broker.port,
            username=endpoint.username,
            password=endpoint.password,
            identifier=f"phone-{tenant}",
        ) as client:
            await client.subscribe(f"sanitrack/{tenant}/staff/+/alerts", qos=1)
            ready.set()
            async for message in client.messages:
                received.append((str(message.topic), orjson.loads(bytes(message.payload))))

    ready = asyncio.Event()
    async with (
        alerts.StaffAlertPublisher(
            endpoint, rules.recipients, client_id=f"{tenant}-staff"
        ) as staff,
        running(listen(ready), "phone"),
    ):
        rules.send_to_staff(staff)
        await rules.start()
        ingest = IngestService(ingest_settings(), pool, endpoint, consumers=[rules.consume])
        async with running(ingest.run(), "ingest"), running(rules.run(), "rules"):
            await asyncio.wait_for(ingest.subscribed.wait(), 15)
            await asyncio.wait_for(ready.wait(), 15)
            truth = simulator.TruthLog(start)
            clock.restart()
            await simulator.play(
                scenario,
                registered.secrets,
                broker.host,
                broker.port,
                truth,
                speedup=SPEEDUP,
            )
            await ingest.flush()
            await asyncio.sleep(1.5)  # the reorder window, the writer, the staff publisher

    async with pool.connection() as conn:
        stored = await alerts.list_alerts(conn, registered.tenant_id, limit=1000)
    device_of_run = {run: slug for slug, run in registered.route_run_ids.items()}
    start_s = start.timestamp()

    # wrong_route: every excursion long enough to be one is found, and almost nothing else.
    excursions = [
        e
        for e in truth.entries
        if e.kind is FaultKind.WRONG_ROUTE
        and (e.end_s is None or e.end_s - e.start_s >= settings.min_off_route_s)
    ]
    wrong = [a for a in stored if a.kind is AlertKind.WRONG_ROUTE]
    assert excursions, "the scenario should drive off route"

    def covers(alert: alerts.Alert, entry: simulator.TruthEntry) -> bool:
        at = alert.opened_at.timestamp() - start_s
        end = entry.end_s if entry.end_s is not None else math.inf
        return device_of_run.get(alert.route_run_id or -1) == entry.device and (
            entry.start_s - 60 <= at <= end + 60
        )

    found = [e for e in excursions if any(covers(a, e) for a in wrong)]
    assert len(found) >= 0.8 * len(excursions)
    true_alerts = [a for a in wrong if any(covers(a, e) for e in truth.entries)]
    assert len(true_alerts) >= 0.8 * len(wrong)

    # missed_stop: the stops driven past are alerted (by run and stop).
    skipped = {(e.device, e.stop) for e in truth.entries if e.kind is FaultKind.SKIPPED_STOP}
    missed = {
        (device_of_run[a.route_run_id], a.stop_seq)
        for a in stored
        if a.kind is AlertKind.MISSED_STOP and a.route_run_id in device_of_run
    }
    assert skipped, "the scenario should skip stops"
    assert len(skipped & missed) >= 0.8 * len(skipped)
    assert len(skipped & missed) >= 0.7 * len(missed)

    # Once each, by key; the driver's phone heard every wrong_route and missed_stop opening.
    assert len({a.key for a in stored}) == len(stored)
    heard = {(payload["id"], payload["change"]) for _topic, payload in received}
    for alert in stored:
        if alert.kind in (AlertKind.WRONG_ROUTE, AlertKind.MISSED_STOP):
            assert (alert.id, "opened") in heard, alert
    driver_topics = {
        f"sanitrack/{tenant}/staff/{registered.staff_ids[v.driver_code]}/alerts"
        for v in scenario.vehicles
    }
    assert any(topic in driver_topics for topic, _ in received)
    async with pool.connection() as conn:
        visits = await alerts.list_visits(
            conn, registered.tenant_id, next(iter(registered.route_run_ids.values()))
        )
    assert visits, "stops served are recorded as visits"

    # A restart replays the stored day: the same alerts, nothing new, nothing lost.
    again = RulesService(settings, pool, clock=ScenarioClock(clock.now(), 0.0))
    await again.start()
    async with pool.connection() as conn:
        after = await alerts.list_alerts(conn, registered.tenant_id, limit=1000)
    assert sorted(a.key for a in after) == sorted(a.key for a in stored)
