"""Recovery: the rules engine restarts in the middle of an excursion and rebuilds its state
from the database: one alert, not two; and an alert lost in a crash (fixes stored, alert
not) is stored when the engine comes back."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt
import orjson
from psycopg import AsyncConnection

import alerts
import customers
import fleet
import planning
import storage
from alerts import AlertKind, AlertState
from geo import LocalProjection
from ingest import DeviceItem, IngestService
from rules.service import RulesService
from sanitrack.clock import ManualClock
from sanitrack.settings import RulesSettings
from storage import Pool
from tests.support import BrokerUnderTest, DeviceUnderTest, ingest_settings, wait_for

PROJECTION = LocalProjection(20.97, 105.78)
# Now minus an hour: fixes 5 s apart from here stay in the past.
START = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
SPEED_MPS = 8.0


def at(seconds: float) -> dt.datetime:
    return START + dt.timedelta(seconds=seconds)


def latlon(x: float, y: float) -> tuple[float, float]:
    return PROJECTION.to_latlon(x, y)


async def make_run(pool: Pool) -> tuple[DeviceUnderTest, int]:
    """A truck on a 2 km street running east (y = 0) with one stop at its far end."""
    tenant = f"rec-{uuid.uuid4().hex[:8]}"
    async with pool.connection() as conn:
        owner = await fleet.ensure_tenant(conn, tenant, tenant)
        vehicle_id = await fleet.create_vehicle(conn, owner.id, "29C-99999")
        created = await fleet.create_device(
            conn, owner, "truck-1", fleet.DeviceKind.TRUCK, vehicle_id=vehicle_id
        )
        service_point = await _service_point(conn, owner.id)
        end_lat, end_lon = latlon(2000.0, 0.0)
        start_lat, start_lon = latlon(0.0, 0.0)
        run_id = await planning.create_route_run(
            conn,
            owner.id,
            planning.NewRouteRun(
                vehicle_id=vehicle_id,
                local_date=START.date(),
                name="Tuyến thử",
                planned_start=at(0),
                planned_end=at(1800),
                corridor_m=50.0,
                expected_path=((start_lon, start_lat), (end_lon, end_lat)),
                path_length_m=2000.0,
                source=planning.RunSource.MANUAL,
                stops=(
                    planning.RouteStop(
                        seq=1,
                        kind=planning.StopKind.COLLECT,
                        service_point_id=service_point,
                        lat=end_lat,
                        lon=end_lon,
                        path_offset_m=2000.0,
                        planned_arrival=at(600),
                        dwell_radius_m=30.0,
                    ),
                ),
            ),
        )
        await conn.commit()
    device = DeviceUnderTest(
        tenant, created.device.slug, created.username, created.secret, created.device.id
    )
    return device, run_id


async def _service_point(conn: AsyncConnection[Any], tenant_id: int) -> int:
    ids = await customers.ensure_service_points(
        conn,
        tenant_id,
        [
            customers.NewServicePoint(
                code="KH-1",
                name="Nguyễn Văn A",
                kind=customers.CustomerKind.HOUSEHOLD,
                address="1 Quang Trung",
                lat=latlon(2000.0, 10.0)[0],
                lon=latlon(2000.0, 10.0)[1],
                position_source=customers.PositionSource.SIMULATED,
            )
        ],
    )
    return ids["KH-1"]


def fixes(first_s: float, points: list[tuple[float, float]]) -> list[bytes]:
    """One fix every 5 s from ``first_s`` at each (x, y), driving at SPEED_MPS."""
    out = []
    for n, (x, y) in enumerate(points):
        lat, lon = latlon(x, y)
        out.append(
            orjson.dumps(
                {
                    "ts": at(first_s + 5 * n).isoformat().replace("+00:00", "Z"),
                    "lat": lat,
                    "lon": lon,
                    "speed_kmh": SPEED_MPS * 3.6,
                    "accuracy_m": 5.0,
                    "ignition": True,
                }
            )
        )
    return out


async def publish(broker: BrokerUnderTest, device: DeviceUnderTest, payloads: list[bytes]) -> None:
    async with aiomqtt.Client(
        broker.host,
        broker.port,
        username=device.username,
        password=device.secret,
        identifier=f"{device.username}-{uuid.uuid4().hex[:6]}",
    ) as client:
        for payload in payloads:
            await client.publish(device.topic, payload, qos=1)


@contextlib.asynccontextmanager
async def pipeline(
    pool: Pool,
    broker: BrokerUnderTest,
    rules: RulesService | None,
    client_id: str,
    *,
    recovered_first: bool = True,
) -> AsyncIterator[IngestService]:
    """Ingest (a persistent session named ``client_id``) feeding ``rules``, both running;
    ingest starts once the engine has recovered, or (``recovered_first=False``) at once,
    as in the service (the engine holds what it is handed meanwhile)."""
    tasks = []
    if rules is not None:
        if recovered_first:
            await rules.start()
        tasks.append(asyncio.create_task(rules.run(), name="rules"))
    consumers = [rules.consume] if rules is not None else []
    ingest = IngestService(
        ingest_settings(client_id=client_id), pool, broker.service_endpoint(), consumers=consumers
    )
    tasks.append(asyncio.create_task(ingest.run(), name="ingest"))
    try:
        await asyncio.wait_for(ingest.subscribed.wait(), 15)
        yield ingest
        await ingest.flush()
        await asyncio.sleep(0.5)  # the reorder window, then the rules writer
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def wrong_routes(pool: Pool, device: DeviceUnderTest) -> list[alerts.Alert]:
    async with pool.connection() as conn:
        tenant = await fleet.get_tenant(conn, device.tenant)
        found = await alerts.list_alerts(conn, tenant.id, kinds=[AlertKind.WRONG_ROUTE])
    return found


def clock() -> ManualClock:
    return ManualClock(at(900))  # the run's day, after the excursion (sweeps see no deadline)


ON_ROUTE = [(SPEED_MPS * 5 * n, 0.0) for n in range(20)]  # 0 .. 760 m east, on the street
# Then a turn north into another street, 150 m off the route, for 2 minutes ...
OFF_ROUTE = [(800.0, 40.0 * n) for n in range(1, 5)] + [(800.0 + 40 * n, 160.0) for n in range(20)]
BACK = [(1600.0 + 40 * n, 0.0) for n in range(10)]  # ... and back on the route


async def test_a_restart_in_the_middle_of_an_excursion_keeps_one_alert(
    pool: Pool, broker: BrokerUnderTest
) -> None:
    device, _run_id = await make_run(pool)
    client_id = f"ingest-rec-{uuid.uuid4().hex[:6]}"
    settings = RulesSettings()
    first_half = ON_ROUTE + OFF_ROUTE[:12]
    async with pipeline(pool, broker, RulesService(settings, pool, clock=clock()), client_id):
        await publish(broker, device, fixes(0, first_half))
        await wait_for(lambda: _count(pool, device), 1)
    opened = await wrong_routes(pool, device)
    assert len(opened) == 1
    assert opened[0].state is AlertState.OPEN

    # Down: the rest of the excursion and the way back wait in the broker for the session.
    rest = OFF_ROUTE[12:] + BACK
    await publish(broker, device, fixes(5 * len(first_half), rest))
    async with pipeline(pool, broker, RulesService(settings, pool, clock=clock()), client_id):
        await wait_for(lambda: _resolved(pool, device), 1)
    after = await wrong_routes(pool, device)
    assert len(after) == 1, "the restart must not open the excursion twice"
    alert = after[0]
    assert alert.id == opened[0].id
    assert alert.state is AlertState.RESOLVED
    assert alert.resolution is alerts.Resolution.CLEARED
    # The evidence spans the whole excursion, both sides of the restart.
    assert alert.evidence["off_route_fixes"] >= len(OFF_ROUTE) - 2
    assert alert.evidence["max_distance_m"] >= 150


async def test_an_alert_lost_in_a_crash_is_stored_when_the_engine_comes_back(
    pool: Pool, broker: BrokerUnderTest
) -> None:
    device, _run_id = await make_run(pool)
    client_id = f"ingest-rec-{uuid.uuid4().hex[:6]}"
    # The fixes are stored, but no engine ran (as if it died before writing its alert).
    async with pipeline(pool, broker, None, client_id) as ingest:
        await publish(broker, device, fixes(0, ON_ROUTE + OFF_ROUTE + BACK))
        total = len(ON_ROUTE) + len(OFF_ROUTE) + len(BACK)
        await wait_for(lambda: _positions(pool, device), total)
        assert ingest.metrics is not None
    assert await wrong_routes(pool, device) == []
    rules = RulesService(RulesSettings(), pool, clock=clock())
    await rules.start()
    found = await wrong_routes(pool, device)
    assert len(found) == 1
    assert found[0].state is AlertState.RESOLVED
    # Starting again changes nothing: the same key, no second alert.
    await RulesService(RulesSettings(), pool, clock=clock()).start()
    assert [a.id for a in await wrong_routes(pool, device)] == [found[0].id]


async def test_a_late_fix_that_moves_an_excursions_start_keeps_one_alert_across_a_restart(
    pool: Pool, broker: BrokerUnderTest
) -> None:
    """The excursion's first fix 80 m off comes after the ten that follow it: the alert
    opened on those is renamed to start at the late fix (the same alert, not withdrawn and
    opened again). A restart replays the stored fixes in order: the same key, nothing new."""
    device, _run_id = await make_run(pool)
    day = fixes(0, ON_ROUTE + OFF_ROUTE + BACK)
    held = len(ON_ROUTE) + 1  # OFF_ROUTE[1], the first fix past the corridor
    settings = RulesSettings()
    rules = RulesService(settings, pool, clock=clock())
    async with pipeline(pool, broker, rules, f"ingest-rec-{uuid.uuid4().hex[:6]}"):
        await publish(broker, device, day[:held] + day[held + 1 : held + 11])
        opened = await wait_for(lambda: _opened_at(pool, device), [at(5 * (held + 1))])
        assert opened == [at(5 * (held + 1))]
        [first] = await wrong_routes(pool, device)
        await publish(broker, device, [day[held]])  # after the reorder window: late
        moved = await wait_for(lambda: _opened_at(pool, device), [at(5 * held)])
        assert moved == [at(5 * held)], "one alert, its start moved to the late fix"
        await publish(broker, device, day[held + 11 :])
        await wait_for(lambda: _resolved(pool, device), 1)
    assert rules.engine.stats.late_fixes == 1
    [renamed] = await wrong_routes(pool, device)
    assert renamed.id == first.id
    assert renamed.key != first.key
    assert renamed.resolution is alerts.Resolution.CLEARED
    await RulesService(settings, pool, clock=clock()).start()
    assert await wrong_routes(pool, device) == [renamed]


async def test_a_fleet_is_recovered_one_device_at_a_time_and_nothing_is_dropped(
    pool: Pool, broker: BrokerUnderTest
) -> None:
    """Three trucks' days read seven rows at a time, through a writer queue that holds four
    outputs: each device's replay is written before the queue would overflow (the whole
    day's output used to be handed over at once, and dropped past the queue's bound). The
    first truck's lift sensor emptied the bin at its stop (read with its fixes) and the
    second's crew confirmed its stop: each is its stop's proof of service."""
    made = [await make_run(pool) for _ in range(3)]
    trucks = [truck for truck, _run_id in made]
    day = ON_ROUTE + OFF_ROUTE + BACK
    async with pipeline(pool, broker, None, f"ingest-rec-{uuid.uuid4().hex[:6]}"):
        for truck in trucks:
            await publish(broker, truck, fixes(0, day))
        for truck in trucks:
            await wait_for(functools.partial(_positions, pool, truck), len(day))
    lift_lat, lift_lon = latlon(2000.0, 0.0)
    async with pool.connection() as conn:
        tenant = await fleet.get_tenant(conn, trucks[0].tenant)
        lift = storage.DeviceEventRow(
            tenant.id, trucks[0].device_id, at(262), at(262), "bin_lift", lift_lat, lift_lon
        )
        second = await fleet.get_tenant(conn, trucks[1].tenant)
        confirmed = storage.DeviceEventRow(  # from the second truck's tablet
            second.id,
            trucks[1].device_id,
            at(250),
            at(250),
            "stop_confirm",
            details={"route_run_id": made[1][1], "stop_seq": 1},
        )
        await storage.write_device_events(conn, [lift, confirmed])
        await conn.commit()
    rules = RulesService(RulesSettings(), pool, clock=clock(), max_pending=4)
    await rules.load()
    assert await rules.recover(batch_rows=7) == 3 * len(day) + 2
    for truck in trucks:
        found = await wrong_routes(pool, truck)
        assert [a.state for a in found] == [AlertState.RESOLVED]
        assert found[0].evidence["off_route_fixes"] >= len(OFF_ROUTE) - 2
    async with pool.connection() as conn:
        lifted = await alerts.list_visits(conn, tenant.id, made[0][1])
        confirmations = await alerts.list_visits(conn, second.id, made[1][1])
    assert [(v.stop_seq, v.evidence) for v in lifted] == [(1, alerts.VisitEvidence.BIN_LIFT)]
    assert [(v.stop_seq, v.evidence) for v in confirmations] == [
        (1, alerts.VisitEvidence.STAFF_CONFIRMATION)
    ]


class _HeldRecovery(RulesService):
    """A recovery that waits to be released (a long one: a large fleet late in the day)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.release = asyncio.Event()
        self.handed = 0  # items ingest handed over

    def consume(self, item: DeviceItem) -> None:
        self.handed += 1
        super().consume(item)

    async def count_handed(self) -> int:
        return self.handed

    async def recover(self, *, batch_rows: int = 10_000) -> int:
        await self.release.wait()
        return await super().recover(batch_rows=batch_rows)


async def test_ingest_runs_while_the_engine_recovers_and_the_engine_takes_what_it_held(
    pool: Pool, broker: BrokerUnderTest
) -> None:
    """Ingest stores positions while the engine replays the stored day (a broker keeps only
    so much of a session's backlog); what it handed the engine meanwhile is evaluated after
    the replay, in order: the excursion opens and resolves once, though the replay read
    part of the same fixes."""
    device, _run_id = await make_run(pool)
    first_half = ON_ROUTE + OFF_ROUTE[:12]
    async with pipeline(pool, broker, None, f"ingest-rec-{uuid.uuid4().hex[:6]}"):
        await publish(broker, device, fixes(0, first_half))  # stored; no engine ran
        await wait_for(lambda: _positions(pool, device), len(first_half))
    rules = _HeldRecovery(RulesSettings(), pool, clock=clock())
    client_id = f"ingest-rec-{uuid.uuid4().hex[:6]}"
    async with pipeline(pool, broker, rules, client_id, recovered_first=False):
        rest = OFF_ROUTE[12:] + BACK
        await publish(broker, device, fixes(5 * len(first_half), rest))
        await wait_for(lambda: _positions(pool, device), len(first_half) + len(rest))
        assert await wait_for(rules.count_handed, len(rest)) == len(rest)
        assert not rules.ready.is_set()
        assert await wrong_routes(pool, device) == []  # nothing evaluated yet
        rules.release.set()
        await wait_for(lambda: _resolved(pool, device), 1)
    found = await wrong_routes(pool, device)
    assert len(found) == 1
    assert found[0].evidence["off_route_fixes"] >= len(OFF_ROUTE) - 2
    assert rules.engine.stats.fixes >= len(first_half) + len(rest)


async def _count(pool: Pool, device: DeviceUnderTest) -> int:
    return len(await wrong_routes(pool, device))


async def _opened_at(pool: Pool, device: DeviceUnderTest) -> list[dt.datetime]:
    return [a.opened_at for a in await wrong_routes(pool, device)]


async def _resolved(pool: Pool, device: DeviceUnderTest) -> int:
    return sum(a.state is AlertState.RESOLVED for a in await wrong_routes(pool, device))


async def _positions(pool: Pool, device: DeviceUnderTest) -> int:
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM positions WHERE device_id = %s", (device.device_id,)
        )
        row = await cursor.fetchone()
    return int(row[0]) if row else 0
