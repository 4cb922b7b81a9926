"""The alert bus: NOTIFY reaches a listener on its own connection only after commit, the
listener comes back after losing its connection, and a slow local subscriber is dropped
without slowing the others."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator

import pytest

import alerts
import planning
from alerts import AlertEvent, Change, LocalBus, StopVisit, Subscription, VisitStatus
from storage import Pool
from tests.alerts.world import T0, World, make_world
from tests.support import wait_for

HEAR_TIMEOUT_S = 10.0
SILENCE_S = 0.5


@pytest.fixture
async def world(pool: Pool) -> World:
    return await make_world(pool)


@contextlib.asynccontextmanager
async def listening(
    database_url: str, pool: Pool, reconnect_min_s: float = 0.5
) -> AsyncIterator[tuple[alerts.AlertListener, Subscription]]:
    """A listener pumped into a local bus, and a subscription to that bus."""
    bus = LocalBus()
    async with alerts.AlertListener(
        database_url, pool, reconnect_min_s=reconnect_min_s, reconnect_max_s=reconnect_min_s * 4
    ) as listener:
        task = asyncio.create_task(alerts.pump(listener, bus), name="pump under test")
        try:
            with bus.subscribe(100) as subscription:
                yield listener, subscription
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def hear(subscription: Subscription) -> alerts.BusItem:
    return await asyncio.wait_for(anext(subscription), HEAR_TIMEOUT_S)


async def hear_nothing(subscription: Subscription) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(anext(subscription), SILENCE_S)


async def test_a_listener_hears_committed_changes_only(
    database_url: str, pool: Pool, world: World
) -> None:
    async with listening(database_url, pool) as (listener, subscription):
        assert listener.listening.is_set()
        async with pool.connection() as conn:
            events = await alerts.apply_signals(
                conn, [world.signal(Change.OPENED, "rolled-back", T0)]
            )
            await alerts.notify(conn, events)
            await conn.rollback()
        async with pool.connection() as conn:
            evidence = {"passed_m": 35.5, "fixes": [[20.97, 105.77]] * 500}  # > 8000 bytes
            events = await alerts.apply_signals(
                conn, [world.signal(Change.OPENED, "kept", T0, evidence=evidence)]
            )
            await alerts.notify(conn, events)
            await hear_nothing(subscription)  # not yet committed
        heard = await hear(subscription)
        assert isinstance(heard, AlertEvent)
        assert heard.change is Change.OPENED
        async with pool.connection() as conn:
            assert heard.alert == await alerts.get_alert(conn, world.tenant_id, events[0].alert.id)
        assert heard.alert.key == "kept"
        assert heard.alert.evidence == evidence
        await hear_nothing(subscription)  # the rolled-back opening never comes


async def test_a_listener_hears_visits_and_changes_in_order(
    database_url: str, pool: Pool, world: World
) -> None:
    arrival = T0 + dt.timedelta(minutes=20)
    visit = world.visit(2, arrival)
    async with listening(database_url, pool) as (_, subscription):
        async with pool.connection() as conn:
            opened = await alerts.apply_signals(conn, [world.signal(Change.OPENED, "missed:2", T0)])
            await alerts.notify(conn, opened)
        async with pool.connection() as conn:
            await alerts.record_visits(conn, [visit])
            await alerts.notify_visits(conn, [visit])
            resolved = await alerts.apply_signals(
                conn,
                [
                    world.signal(
                        Change.RESOLVED, "missed:2", arrival, resolution=alerts.Resolution.CLEARED
                    )
                ],
            )
            await alerts.notify(conn, resolved)
        first, second, third = [await hear(subscription) for _ in range(3)]
    assert isinstance(first, AlertEvent)
    assert first.change is Change.OPENED
    assert second == visit
    assert isinstance(third, AlertEvent)
    assert third.change is Change.RESOLVED
    assert third.alert.state is alerts.AlertState.RESOLVED


async def test_a_listener_listens_again_after_losing_its_connection(
    database_url: str, pool: Pool, world: World
) -> None:
    async with listening(database_url, pool, reconnect_min_s=0.05) as (listener, subscription):
        async with pool.connection() as conn:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database()"
                " AND application_name = 'sanitrack-alert-listener'"
            )

        async def reconnects() -> int:
            return listener.reconnects if listener.listening.is_set() else 0

        assert await wait_for(reconnects, 1, timeout_s=HEAR_TIMEOUT_S) == 1
        async with pool.connection() as conn:
            events = await alerts.apply_signals(conn, [world.signal(Change.OPENED, "again", T0)])
            await alerts.notify(conn, events)
        heard = await hear(subscription)
        assert isinstance(heard, AlertEvent)
        assert heard.alert.key == "again"


def _visit(n: int) -> StopVisit:
    return StopVisit(
        tenant_id=1,
        route_run_id=1,
        stop_seq=n,
        vehicle_id=None,
        device_id=1,
        service_point_id=None,
        status=VisitStatus.PROBABLE,
        evidence=alerts.VisitEvidence.SLOW_PASS,
        arrival_at=T0,
        departure_at=None,
        dwell_s=0.0,
        closest_m=1.0,
        lat=20.97,
        lon=105.77,
        late=False,
    )


async def test_local_bus_drops_a_subscriber_past_its_bound_and_keeps_the_others() -> None:
    bus = LocalBus()
    keeping_up = bus.subscribe(max_queued=100)
    asleep = bus.subscribe(max_queued=3)
    items = [_visit(n) for n in range(1, 11)]
    for item in items:
        bus.publish(item)  # never waits, however far behind a subscriber is
    assert asleep.overflowed
    assert asleep.closed
    assert bus.subscribers == 1
    with pytest.raises(alerts.Overflowed) as dropped:
        async for _ in asleep:
            pass
    assert dropped.value.max_queued == 3
    assert [await anext(keeping_up) for _ in items] == items
    bus.publish(items[0])
    assert await anext(keeping_up) == items[0]


async def test_a_waiting_subscriber_stops_when_closed() -> None:
    bus = LocalBus()
    subscription = bus.subscribe(max_queued=1)
    received: list[alerts.BusItem] = []
    got_one = asyncio.Event()

    async def read() -> None:
        async for item in subscription:
            received.append(item)
            got_one.set()

    reader = asyncio.create_task(read())
    bus.publish(_visit(1))
    await asyncio.wait_for(got_one.wait(), 5)
    subscription.close()  # wakes the reader waiting for the next item
    await asyncio.wait_for(reader, 5)
    assert received == [_visit(1)]
    assert not subscription.overflowed
    assert bus.subscribers == 0
    with pytest.raises(alerts.InvalidValue, match="max_queued"):
        bus.subscribe(0)


async def test_cancelling_a_run_resolves_its_unresolved_alerts_and_announces_it(
    database_url: str, pool: Pool, world: World
) -> None:
    """The engine stops tracking a cancelled run, so its alerts close with it; and what the
    engine still says of the run before its next reload does not open a new one."""
    off_route = world.signal(Change.OPENED, "off:1", T0, kind=alerts.AlertKind.WRONG_ROUTE)
    passed = world.signal(Change.OPENED, "missed:2", T0)
    cleared = world.signal(Change.OPENED, "off:0", T0 - dt.timedelta(minutes=5))
    offline = dataclasses.replace(
        world.signal(Change.OPENED, "offline:1", T0, kind=alerts.AlertKind.OFFLINE),
        route_run_id=None,
        stop_seq=None,
    )
    async with pool.connection() as conn:
        opened = await alerts.apply_signals(conn, [off_route, passed, cleared, offline])
        await alerts.acknowledge(conn, world.tenant_id, opened[1].alert.id, world.dispatcher_id, "")
        await alerts.apply_signals(
            conn,
            [
                dataclasses.replace(
                    cleared, change=Change.RESOLVED, resolution=alerts.Resolution.CLEARED
                )
            ],
        )
    async with listening(database_url, pool) as (_, subscription):
        async with pool.connection() as conn:
            await planning.set_run_status(
                conn, world.tenant_id, world.run_id, planning.RunStatus.CANCELLED
            )
        heard = [await hear(subscription) for _ in range(2)]
        await hear_nothing(subscription)  # not the resolved one, not the one without a run
        async with pool.connection() as conn:
            # Cancelling again, or the engine's opening on the cancelled run, changes nothing.
            await planning.set_run_status(
                conn, world.tenant_id, world.run_id, planning.RunStatus.CANCELLED
            )
            late = world.signal(Change.OPENED, "missed:1", T0 + dt.timedelta(minutes=1))
            assert await alerts.apply_signals(conn, [late]) == []
            stored = {a.key: a for a in await alerts.list_alerts(conn, world.tenant_id)}
        await hear_nothing(subscription)
    assert sorted(e.alert.key for e in heard if isinstance(e, AlertEvent)) == ["missed:2", "off:1"]
    assert all(isinstance(e, AlertEvent) and e.change is Change.RESOLVED for e in heard)
    assert sorted(stored) == ["missed:2", "off:0", "off:1", "offline:1"]
    for key in ("missed:2", "off:1"):
        assert stored[key].state is alerts.AlertState.RESOLVED
        assert stored[key].resolution is alerts.Resolution.RUN_CANCELLED
        assert stored[key].resolve_note == alerts.RUN_CANCELLED_NOTE
        assert stored[key].resolved_at is not None
    assert stored["missed:2"].acknowledged_by == world.dispatcher_id  # who saw it, kept
    assert stored["off:0"].resolution is alerts.Resolution.CLEARED
    assert stored["offline:1"].state is alerts.AlertState.OPEN
