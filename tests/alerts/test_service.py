"""Alert storage: signals are idempotent and only move forward; people act inside their tenant."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

import alerts
import fleet
from alerts import AlertKind, AlertState, Change, Resolution, Severity
from storage import Pool
from tests.alerts.world import T0, World, make_world

MINUTE = dt.timedelta(minutes=1)


@pytest.fixture
async def world(pool: Pool) -> World:
    return await make_world(pool)


async def test_an_opening_applied_twice_gives_one_alert_and_one_event(
    pool: Pool, world: World
) -> None:
    opened = world.signal(Change.OPENED, "missed:1:2", T0, evidence={"passed_m": 40})
    async with pool.connection() as conn:
        [event] = await alerts.apply_signals(conn, [opened])
        assert await alerts.apply_signals(conn, [opened]) == []
        stored = await alerts.list_alerts(conn, world.tenant_id)
        cursor = await conn.execute(
            "SELECT route_run_id, seq FROM route_stops WHERE id = %s", (event.alert.stop_id,)
        )
        assert await cursor.fetchone() == (world.run_id, 2)
    assert stored == [event.alert]
    alert = event.alert
    assert event.change is Change.OPENED
    assert (alert.key, alert.kind, alert.severity, alert.state) == (
        "missed:1:2",
        AlertKind.MISSED_STOP,
        Severity.WARNING,
        AlertState.OPEN,
    )
    assert (alert.device_id, alert.vehicle_id, alert.route_run_id, alert.stop_seq) == (
        world.device_id,
        world.vehicle_id,
        world.run_id,
        2,
    )
    assert alert.opened_at == alert.last_evidence_at == T0
    assert alert.evidence == {"passed_m": 40}
    assert alert.message.startswith("Xe 29C-10001")
    assert alert.resolved_at is None
    assert alert.resolution is None


async def test_a_batch_is_applied_in_order_and_unknown_stops_have_no_stop_id(
    pool: Pool, world: World
) -> None:
    key = "jump:1"
    batch = [
        world.signal(Change.OPENED, key, T0, kind=AlertKind.GPS_JUMP, stop_seq=None),
        world.signal(Change.UPDATED, key, T0 + MINUTE, kind=AlertKind.GPS_JUMP, stop_seq=None),
        world.signal(
            Change.RESOLVED,
            key,
            T0 + MINUTE,
            kind=AlertKind.GPS_JUMP,
            stop_seq=None,
            resolution=Resolution.ONE_SHOT,
        ),
        world.signal(Change.OPENED, "missed:1:9", T0, stop_seq=9),
    ]
    async with pool.connection() as conn:
        events = await alerts.apply_signals(conn, batch)
        assert await alerts.apply_signals(conn, batch) == []
    assert [e.change for e in events] == [
        Change.OPENED,
        Change.UPDATED,
        Change.RESOLVED,
        Change.OPENED,
    ]
    assert events[2].alert.state is AlertState.RESOLVED
    assert events[0].alert.stop_id is None
    assert events[3].alert.stop_id is None  # the run has no stop 9
    assert events[3].alert.stop_seq == 9


async def test_one_shot_events_are_stored_resolved_as_one_change_in_the_batchs_order(
    pool: Pool, world: World
) -> None:
    """A geofence crossing or a GPS jump comes as an opening and its one-shot end: stored as
    one resolved row, one event, as if applied one by one; a replay changes nothing."""

    def one_shot(key: str, at: dt.datetime) -> list[alerts.AlertSignal]:
        opened = world.signal(
            Change.OPENED,
            key,
            at,
            kind=AlertKind.GEOFENCE_EXIT,
            stop_seq=None,
            severity=Severity.INFO,
            message="Xe 29C-10001 ra khỏi Bãi xe",
            evidence={"geofence": "Bãi xe"},
        )
        return [
            opened,
            dataclasses.replace(
                opened, change=Change.RESOLVED, evidence={}, resolution=Resolution.ONE_SHOT
            ),
        ]

    batch = [
        *one_shot("exit:1", T0),
        world.signal(Change.OPENED, "missed:1:2", T0),
        *one_shot("exit:2", T0 + MINUTE),
        *one_shot("exit:1", T0),  # the same crossing again in the batch
        world.signal(Change.RESOLVED, "missed:1:2", T0 + MINUTE, resolution=Resolution.CLEARED),
    ]
    async with pool.connection() as conn:
        events = await alerts.apply_signals(conn, batch)
        assert await alerts.apply_signals(conn, batch) == []
        stored = {a.key: a for a in await alerts.list_alerts(conn, world.tenant_id)}
        # the opening and its end in separate batches: applied one by one, same row
        await alerts.apply_signals(conn, one_shot("exit:3", T0)[:1])
        await alerts.apply_signals(conn, one_shot("exit:3", T0)[1:])
        apart = await alerts.list_alerts(conn, world.tenant_id)
    assert [(e.change, e.alert.key) for e in events] == [
        (Change.OPENED, "exit:1"),
        (Change.OPENED, "missed:1:2"),
        (Change.OPENED, "exit:2"),
        (Change.RESOLVED, "missed:1:2"),
    ]
    assert events[0].alert == stored["exit:1"]
    exit_1 = stored["exit:1"]
    assert (exit_1.state, exit_1.resolution, exit_1.resolved_at) == (
        AlertState.RESOLVED,
        Resolution.ONE_SHOT,
        T0,
    )
    assert exit_1.opened_at == exit_1.last_evidence_at == T0
    assert exit_1.evidence == {"geofence": "Bãi xe"}
    assert exit_1.severity is Severity.INFO
    assert stored["exit:2"].opened_at == T0 + MINUTE
    [exit_3] = [a for a in apart if a.key == "exit:3"]
    same = ("id", "key", "created_at")
    assert {f: v for f, v in dataclasses.asdict(exit_3).items() if f not in same} == {
        f: v for f, v in dataclasses.asdict(exit_1).items() if f not in same
    }


async def test_an_opening_that_replaces_a_key_renames_the_alert(pool: Pool, world: World) -> None:
    """Late data moved an alert's start (its key holds it): the opening under the new key
    names the old one, and the stored alert takes the new key and start, and stays one alert
    with what people did to it. A replay in order (the new key) changes nothing more."""
    second = dt.timedelta(seconds=1)

    def speeding(change: Change, key: str, at: dt.datetime, **more: Any) -> alerts.AlertSignal:
        return world.signal(change, key, at, kind=AlertKind.SPEEDING, stop_seq=None, **more)

    first = speeding(Change.OPENED, "speeding:7::20000", T0 + 20 * second)
    update = speeding(Change.UPDATED, "speeding:7::20000", T0 + MINUTE, evidence={"max_kmh": 71})
    renamed = dataclasses.replace(
        speeding(Change.OPENED, "speeding:7::15000", T0 + 15 * second, evidence={"from": 15}),
        replaces="speeding:7::20000",
    )
    async with pool.connection() as conn:
        [opened, _] = await alerts.apply_signals(conn, [first, update])
        await alerts.acknowledge(conn, world.tenant_id, opened.alert.id, world.dispatcher_id, "ok")
        [event] = await alerts.apply_signals(conn, [renamed])
        again = await alerts.apply_signals(conn, [renamed])
        replayed = await alerts.apply_signals(conn, [dataclasses.replace(renamed, replaces=None)])
        [stored] = await alerts.list_alerts(conn, world.tenant_id)
    assert (again, replayed) == ([], [])
    assert event.change is Change.UPDATED
    assert event.alert == stored
    assert (stored.id, stored.key) == (opened.alert.id, "speeding:7::15000")
    assert (stored.opened_at, stored.last_evidence_at) == (T0 + 15 * second, T0 + MINUTE)
    assert (stored.state, stored.acknowledged_by) == (AlertState.ACKNOWLEDGED, world.dispatcher_id)
    assert stored.evidence == {"from": 15}

    # A resolved alert keeps its end; a one-shot event moves whole; an unknown old key opens,
    # and so does one that was withdrawn (it never held: what opens now is another alert).
    off: dict[str, Any] = {"kind": AlertKind.WRONG_ROUTE, "stop_seq": None}
    crossing = world.signal(
        Change.OPENED, "exit:7:1:20000", T0 + 20 * second, kind=AlertKind.GEOFENCE_EXIT
    )
    cleared = world.signal(
        Change.RESOLVED,
        "missed:7:1:20000",
        T0 + MINUTE,
        resolution=Resolution.CLEARED,
        message="đã thu gom",
        evidence={"visit": 1},
    )
    async with pool.connection() as conn:
        await alerts.apply_signals(
            conn,
            [
                crossing,
                dataclasses.replace(
                    crossing, change=Change.RESOLVED, resolution=Resolution.ONE_SHOT
                ),
                world.signal(Change.OPENED, "missed:7:1:20000", T0 + 20 * second),
                cleared,
                world.signal(Change.OPENED, "off:7:1:20000", T0 + 20 * second, **off),
                world.signal(
                    Change.RESOLVED,
                    "off:7:1:20000",
                    T0 + MINUTE,
                    resolution=Resolution.WITHDRAWN,
                    **off,
                ),
            ],
        )
        events = await alerts.apply_signals(
            conn,
            [
                dataclasses.replace(
                    crossing, key="exit:7:1:15000", at=T0 + 15 * second, replaces=crossing.key
                ),
                dataclasses.replace(
                    world.signal(Change.OPENED, "missed:7:1:15000", T0 + 15 * second),
                    replaces="missed:7:1:20000",
                ),
                dataclasses.replace(
                    world.signal(Change.OPENED, "missed:7:2:15000", T0 + 15 * second),
                    replaces="missed:7:2:20000",
                ),
                dataclasses.replace(
                    world.signal(Change.OPENED, "off:7:1:15000", T0 + 15 * second, **off),
                    replaces="off:7:1:20000",
                ),
            ],
        )
        withdrawn = await alerts.list_alerts(conn, world.tenant_id, kinds=[AlertKind.WRONG_ROUTE])
    assert [(e.change, e.alert.key) for e in events] == [
        (Change.UPDATED, "exit:7:1:15000"),
        (Change.UPDATED, "missed:7:1:15000"),
        (Change.OPENED, "missed:7:2:15000"),
        (Change.OPENED, "off:7:1:15000"),  # not the withdrawn one, taken back
    ]
    assert {(a.key, a.resolution) for a in withdrawn} == {
        ("off:7:1:20000", Resolution.WITHDRAWN),
        ("off:7:1:15000", None),
    }
    crossed, served, _, _ = (e.alert for e in events)
    assert crossed.opened_at == crossed.last_evidence_at == crossed.resolved_at
    assert crossed.opened_at == T0 + 15 * second
    assert (crossed.state, crossed.resolution) == (AlertState.RESOLVED, Resolution.ONE_SHOT)
    assert (served.opened_at, served.resolved_at) == (T0 + 15 * second, T0 + MINUTE)
    assert (served.resolution, served.evidence) == (Resolution.CLEARED, {"visit": 1})


async def test_updates_move_evidence_only_forward(pool: Pool, world: World) -> None:
    key = "route:1"
    later, earlier = T0 + 10 * MINUTE, T0 + 5 * MINUTE
    async with pool.connection() as conn:
        await alerts.apply_signals(conn, [world.signal(Change.OPENED, key, T0)])
        [event] = await alerts.apply_signals(
            conn,
            [
                world.signal(
                    Change.UPDATED,
                    key,
                    later,
                    evidence={"off_route_m": 300},
                    severity=Severity.CRITICAL,
                )
            ],
        )
        assert event.change is Change.UPDATED
        assert event.alert.last_evidence_at == later
        assert event.alert.severity is Severity.CRITICAL
        late_news = world.signal(Change.UPDATED, key, earlier, evidence={"off_route_m": 120})
        same_again = world.signal(
            Change.UPDATED, key, later, evidence={"off_route_m": 300}, severity=Severity.CRITICAL
        )
        assert await alerts.apply_signals(conn, [late_news, same_again]) == []
        stored = await alerts.get_alert(conn, world.tenant_id, event.alert.id)
        assert stored == event.alert
        [more] = await alerts.apply_signals(
            conn, [world.signal(Change.UPDATED, key, later, evidence={"off_route_m": 320})]
        )
        assert more.alert.evidence == {"off_route_m": 320}
        assert more.alert.opened_at == T0


async def test_resolving_twice_changes_nothing_and_a_resolved_alert_stays_closed(
    pool: Pool, world: World
) -> None:
    key = "offline:1"
    at = T0 + 3 * MINUTE
    resolved = world.signal(
        Change.RESOLVED,
        key,
        at,
        kind=AlertKind.OFFLINE,
        resolution=Resolution.CLEARED,
        evidence={"back_at": "08:03"},
        message="Thiết bị của xe 29C-10001 đã kết nối lại",
    )
    async with pool.connection() as conn:
        await alerts.apply_signals(conn, [world.signal(Change.OPENED, key, T0)])
        [event] = await alerts.apply_signals(conn, [resolved])
        assert event.alert.state is AlertState.RESOLVED
        assert (event.alert.resolved_at, event.alert.resolution) == (at, Resolution.CLEARED)
        assert event.alert.evidence == {"back_at": "08:03"}
        assert event.alert.message.startswith("Xe 29C-10001 đã đi qua")  # the opening's
        assert event.alert.resolve_note == "Thiết bị của xe 29C-10001 đã kết nối lại"
        assert event.alert.last_evidence_at == at
        again = [
            resolved,
            world.signal(Change.UPDATED, key, at + MINUTE),
            world.signal(Change.OPENED, key, T0),
            world.signal(Change.RESOLVED, key, at + MINUTE, resolution=Resolution.WITHDRAWN),
        ]
        assert await alerts.apply_signals(conn, again) == []
        assert await alerts.get_alert(conn, world.tenant_id, event.alert.id) == event.alert
        assert await alerts.open_alerts(conn, world.tenant_id) == []


async def test_unknown_keys_are_ignored(pool: Pool, world: World) -> None:
    async with pool.connection() as conn:
        events = await alerts.apply_signals(
            conn,
            [
                world.signal(Change.UPDATED, "nobody:1", T0),
                world.signal(Change.RESOLVED, "nobody:2", T0, resolution=Resolution.CLEARED),
                world.signal(Change.OPENED, "somebody:1", T0),
            ],
        )
        assert [(e.change, e.alert.key) for e in events] == [(Change.OPENED, "somebody:1")]
        assert len(await alerts.list_alerts(conn, world.tenant_id)) == 1


@pytest.mark.parametrize(
    ("change", "at", "resolution", "words"),
    [
        (Change.ACKNOWLEDGED, T0, None, "for people"),
        (Change.OPENED, T0.replace(tzinfo=None), None, "time zone"),
        (Change.RESOLVED, T0, None, "resolution"),
        (Change.RESOLVED, T0, Resolution.BY_PERSON, "resolution"),
        (Change.UPDATED, T0, None, "replaces"),
    ],
)
async def test_malformed_signals_are_refused_before_anything_is_written(
    pool: Pool,
    world: World,
    change: Change,
    at: dt.datetime,
    resolution: Resolution | None,
    words: str,
) -> None:
    good = world.signal(Change.OPENED, "good:1", T0)
    bad = world.signal(change, "bad:1", at, resolution=resolution)
    if words == "replaces":  # only an opening renames
        bad = dataclasses.replace(bad, replaces="good:1")
    async with pool.connection() as conn:
        with pytest.raises(alerts.InvalidValue, match=words):
            await alerts.apply_signals(conn, [good, bad])
        assert await alerts.list_alerts(conn, world.tenant_id) == []


async def test_a_signal_naming_a_missing_device_is_not_found(pool: Pool, world: World) -> None:
    signal = world.signal(Change.OPENED, "ghost:1", T0)
    ghost = dataclasses.replace(signal, key="ghost:2", device_id=999_999)
    async with pool.connection() as conn:
        with pytest.raises(alerts.NotFound, match="device"):
            await alerts.apply_signals(conn, [signal, ghost])
        await conn.rollback()
        assert await alerts.list_alerts(conn, world.tenant_id) == []


async def test_people_acknowledge_assign_and_resolve(pool: Pool, world: World) -> None:
    async with pool.connection() as conn:
        [opened] = await alerts.apply_signals(conn, [world.signal(Change.OPENED, "k:1", T0)])
        alert_id = opened.alert.id
        seen = await alerts.acknowledge(
            conn, world.tenant_id, alert_id, world.dispatcher_id, "Đã gọi lái xe"
        )
        assert seen.change is Change.ACKNOWLEDGED
        assert seen.alert.state is AlertState.ACKNOWLEDGED
        assert (seen.alert.acknowledged_by, seen.alert.acknowledge_note) == (
            world.dispatcher_id,
            "Đã gọi lái xe",
        )
        assert seen.alert.acknowledged_at is not None
        given = await alerts.assign(
            conn, world.tenant_id, alert_id, world.driver_id, world.dispatcher_id
        )
        assert given.change is Change.ASSIGNED
        assert (given.alert.assigned_to, given.alert.assigned_by) == (
            world.driver_id,
            world.dispatcher_id,
        )
        assert given.alert.assigned_at is not None
        assert given.alert.state is AlertState.ACKNOWLEDGED
        # The rules still add evidence to an acknowledged alert.
        [updated] = await alerts.apply_signals(
            conn, [world.signal(Change.UPDATED, "k:1", T0 + MINUTE)]
        )
        assert updated.alert.state is AlertState.ACKNOWLEDGED
        done = await alerts.resolve(conn, world.tenant_id, alert_id, world.driver_id, "Đã thu")
        assert done.change is Change.RESOLVED
        assert done.alert.state is AlertState.RESOLVED
        assert (done.alert.resolution, done.alert.resolved_by, done.alert.resolve_note) == (
            Resolution.BY_PERSON,
            world.driver_id,
            "Đã thu",
        )
        assert done.alert.resolved_at is not None
        assert done.alert.acknowledged_by == world.dispatcher_id  # the history stays
        with pytest.raises(alerts.Conflict, match="resolved"):
            await alerts.acknowledge(conn, world.tenant_id, alert_id, world.dispatcher_id, None)
        with pytest.raises(alerts.Conflict, match="resolved"):
            await alerts.resolve(conn, world.tenant_id, alert_id, world.dispatcher_id, None)
        with pytest.raises(alerts.Conflict, match="resolved"):
            await alerts.assign(conn, world.tenant_id, alert_id, world.driver_id, world.driver_id)
        # A resolved alert does not come back when the rules resolve it too.
        assert (
            await alerts.apply_signals(
                conn,
                [world.signal(Change.RESOLVED, "k:1", T0, resolution=Resolution.VISITED_LATE)],
            )
            == []
        )
        assert await alerts.get_alert(conn, world.tenant_id, alert_id) == done.alert


async def test_people_reach_only_their_own_tenants_alerts(pool: Pool, world: World) -> None:
    other = await make_world(pool)
    async with pool.connection() as conn:
        [mine] = await alerts.apply_signals(conn, [world.signal(Change.OPENED, "same-key", T0)])
        [theirs] = await alerts.apply_signals(conn, [other.signal(Change.OPENED, "same-key", T0)])
        assert mine.alert.id != theirs.alert.id  # keys are per tenant
        theirs_id = theirs.alert.id
        for attempt in (
            alerts.acknowledge(conn, world.tenant_id, theirs_id, world.dispatcher_id, None),
            alerts.assign(conn, world.tenant_id, theirs_id, world.driver_id, world.dispatcher_id),
            alerts.resolve(conn, world.tenant_id, theirs_id, world.dispatcher_id, None),
            alerts.get_alert(conn, world.tenant_id, theirs_id),
            alerts.get_alert(conn, world.tenant_id, 999_999),
        ):
            with pytest.raises(alerts.NotFound) as missing:
                await attempt
            assert str(missing.value) in (f"alert {theirs_id}", "alert 999999")
        # Their staff cannot act on my alert; nor can mine be assigned to their staff.
        with pytest.raises(alerts.NotFound, match=f"staff member {other.dispatcher_id}"):
            await alerts.acknowledge(
                conn, world.tenant_id, mine.alert.id, other.dispatcher_id, None
            )
        with pytest.raises(alerts.NotFound, match=f"staff member {other.driver_id}"):
            await alerts.assign(
                conn, world.tenant_id, mine.alert.id, other.driver_id, world.dispatcher_id
            )
        assert (await alerts.get_alert(conn, other.tenant_id, theirs_id)).state is AlertState.OPEN
        assert await alerts.list_alerts(conn, world.tenant_id) == [mine.alert]


async def test_list_alerts_filters_newest_first_and_open_alerts_spans_tenants(
    pool: Pool, world: World
) -> None:
    other = await make_world(pool)
    async with pool.connection() as conn:
        second_vehicle = await fleet.ensure_vehicle(conn, world.tenant_id, "29C-10002")
        signals = [
            world.signal(Change.OPENED, f"k:{n}", T0 + n * MINUTE, kind=kind)
            for n, kind in enumerate(
                [AlertKind.WRONG_ROUTE, AlertKind.MISSED_STOP, AlertKind.SPEEDING]
            )
        ]
        signals.append(dataclasses.replace(signals[0], key="v2", vehicle_id=second_vehicle))
        signals.append(world.signal(Change.RESOLVED, "k:1", T0, resolution=Resolution.CLEARED))
        signals.append(other.signal(Change.OPENED, "k:0", T0))
        await alerts.apply_signals(conn, signals)
        keys = [a.key for a in await alerts.list_alerts(conn, world.tenant_id)]
        assert keys == ["k:2", "k:1", "v2", "k:0"]  # "v2" and "k:0" share T0: newer id first
        unresolved = {AlertState.OPEN, AlertState.ACKNOWLEDGED}
        assert [
            a.key for a in await alerts.list_alerts(conn, world.tenant_id, states=unresolved)
        ] == ["k:2", "v2", "k:0"]
        assert [
            a.key
            for a in await alerts.list_alerts(
                conn, world.tenant_id, kinds=[AlertKind.WRONG_ROUTE], vehicle_id=second_vehicle
            )
        ] == ["v2"]
        window = await alerts.list_alerts(
            conn, world.tenant_id, since=T0 + MINUTE, until=T0 + 2 * MINUTE
        )
        assert [a.key for a in window] == ["k:1"]
        assert len(await alerts.list_alerts(conn, world.tenant_id, limit=2)) == 2
        assert await alerts.list_alerts(conn, world.tenant_id, route_run_id=other.run_id) == []
        with pytest.raises(alerts.InvalidValue, match="limit"):
            await alerts.list_alerts(conn, world.tenant_id, limit=0)
        everyone = await alerts.open_alerts(conn)
        assert [(a.tenant_id, a.key) for a in everyone] == [
            (world.tenant_id, "k:0"),
            (world.tenant_id, "v2"),
            (world.tenant_id, "k:2"),
            (other.tenant_id, "k:0"),
        ]
        assert [a.key for a in await alerts.open_alerts(conn, other.tenant_id)] == ["k:0"]
