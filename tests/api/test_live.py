"""The live feed over a real uvicorn server and a real WebSocket client (``websockets``)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
import uvicorn
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from alerts import (
    Alert,
    AlertEvent,
    AlertKind,
    AlertState,
    Change,
    Severity,
    StopVisit,
    VisitEvidence,
    VisitStatus,
)
from api import (
    LiveFeed,
    LiveFilter,
    LivePosition,
    Principal,
    Snapshot,
    StaticTokens,
    alert_json,
    install_live,
    visit_json,
)
from api.live import FeedItem
from broker import free_port

TOKEN_1 = "token-of-tenant-1"
TOKEN_2 = "token-of-tenant-2"
PRINCIPALS = {TOKEN_1: Principal(1, "dispatcher-1"), TOKEN_2: Principal(2, "dispatcher-2")}
T0 = dt.datetime(2026, 12, 4, 1, 15, 30, 250_000, tzinfo=dt.UTC)
ICT = dt.timezone(dt.timedelta(hours=7))


# ---------------------------------------------------------------- domain values


def make_alert(
    alert_id: int,
    *,
    tenant_id: int = 1,
    vehicle_id: int | None = 7,
    route_run_id: int | None = 70,
    state: AlertState = AlertState.OPEN,
    evidence: dict[str, Any] | None = None,
) -> Alert:
    return Alert(
        id=alert_id,
        key=f"wrong_route:{alert_id}",
        tenant_id=tenant_id,
        kind=AlertKind.WRONG_ROUTE,
        severity=Severity.WARNING,
        device_id=100 + alert_id,
        vehicle_id=vehicle_id,
        route_run_id=route_run_id,
        stop_id=None,
        stop_seq=None,
        opened_at=T0,
        last_evidence_at=T0 + dt.timedelta(seconds=alert_id),
        state=state,
        message=f"Xe 29C-{alert_id:05d} đi sai tuyến",
        evidence=evidence or {},
        resolved_at=None,
        resolution=None,
        resolved_by=None,
        acknowledged_at=None,
        acknowledged_by=None,
        acknowledge_note=None,
        assigned_to=None,
        assigned_at=None,
    )


def make_visit(
    stop_seq: int, *, tenant_id: int = 1, vehicle_id: int | None = 7, route_run_id: int = 70
) -> StopVisit:
    return StopVisit(
        tenant_id=tenant_id,
        route_run_id=route_run_id,
        stop_seq=stop_seq,
        vehicle_id=vehicle_id,
        device_id=300,
        service_point_id=400 + stop_seq,
        status=VisitStatus.VISITED,
        evidence=VisitEvidence.DWELL,
        arrival_at=T0,
        departure_at=None,
        dwell_s=95.0,
        closest_m=4.5,
        lat=20.97123,
        lon=105.77231,
        late=False,
    )


def opened(alert: Alert) -> AlertEvent:
    return AlertEvent(Change.OPENED, alert)


# ---------------------------------------------------------------- the bus and the store


class Overflowed(Exception):
    """How the in-test bus, like alerts.LocalBus, tells a subscriber it was dropped."""


class InTestSubscription:
    def __init__(self, bus: InTestBus, max_queued: int) -> None:
        self.bus = bus
        self.max_queued = max_queued
        self.overflowed = False
        self._items: deque[FeedItem] = deque()
        self._ready = asyncio.Event()

    def put(self, item: FeedItem) -> None:
        if len(self._items) >= self.max_queued:
            self.overflowed = True
            self.close()
        else:
            self._items.append(item)
        self._ready.set()

    def close(self) -> None:
        if self in self.bus.subscriptions:
            self.bus.subscriptions.remove(self)

    def __aiter__(self) -> InTestSubscription:
        return self

    async def __anext__(self) -> FeedItem:
        while not self._items:
            if self.overflowed and self.bus.overflow_raises:
                raise Overflowed(self.max_queued)
            if self.overflowed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()


class InTestBus:
    """Fan-out like alerts.LocalBus: publishing never waits; an overflowing subscriber is
    dropped and, once it has read what it holds, told so by an error or by the end."""

    def __init__(self, overflow_raises: bool = True) -> None:
        self.overflow_raises = overflow_raises
        self.subscriptions: list[InTestSubscription] = []

    def subscribe(self, max_queued: int) -> InTestSubscription:
        subscription = InTestSubscription(self, max_queued)
        self.subscriptions.append(subscription)
        return subscription

    def publish(self, *items: FeedItem) -> None:
        for item in items:
            for subscription in list(self.subscriptions):
                subscription.put(item)


@dataclass
class InTestStore:
    """The snapshot query: what a repository would read for the principal and the filter."""

    alerts: list[Alert] = field(default_factory=list)
    visits: list[StopVisit] = field(default_factory=list)
    route_vehicles: dict[int, int] = field(default_factory=dict)  # run id -> vehicle id
    leaky: bool = False  # answer with every tenant's everything, as a faulty query would
    failing: bool = False
    calls: list[tuple[Principal, LiveFilter]] = field(default_factory=list)

    async def __call__(self, principal: Principal, live_filter: LiveFilter) -> Snapshot:
        self.calls.append((principal, live_filter))
        await asyncio.sleep(0.01)  # a query takes a while: deltas may arrive meanwhile
        if self.failing:
            raise OSError("database unavailable")
        if self.leaky:
            return Snapshot(self.alerts, self.visits)
        return Snapshot(
            [a for a in self.alerts if self._mine(principal, live_filter, a)],
            [v for v in self.visits if self._mine(principal, live_filter, v)],
            route_vehicles=frozenset(
                vehicle for run, vehicle in self.route_vehicles.items() if run in live_filter.routes
            ),
        )

    @staticmethod
    def _mine(principal: Principal, live_filter: LiveFilter, item: Alert | StopVisit) -> bool:
        return item.tenant_id == principal.tenant_id and live_filter.matches(
            item.vehicle_id, item.route_run_id
        )


# ---------------------------------------------------------------- server and clients


@dataclass
class Live:
    feed: LiveFeed
    bus: InTestBus
    store: InTestStore
    port: int

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/live"


@contextlib.asynccontextmanager
async def running_feed(
    store: InTestStore | None = None,
    bus: InTestBus | None = None,
    *,
    deflate: bool = False,
    **options: Any,
) -> AsyncIterator[Live]:
    """The feed behind uvicorn, configured as sanitrack.app.serve_http does, on a free port.

    Stopped through ``should_exit`` rather than cancelled, so that uvicorn closes the
    sockets and waits for the handlers before the next test shares the event loop.
    """
    bus, store = bus or InTestBus(), store or InTestStore()
    feed = LiveFeed(StaticTokens(PRINCIPALS), bus, store, **options)
    app = FastAPI()
    install_live(app, feed)
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        ws="websockets-sansio",
        ws_per_message_deflate=deflate,
    )
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    serving = asyncio.create_task(server.serve(), name="uvicorn")
    pumping = asyncio.create_task(feed.run(), name="live-feed")
    try:
        await until(lambda: server.started and len(bus.subscriptions) == 1)
        yield Live(feed, bus, store, port)
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 15)
        pumping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pumping
        assert bus.subscriptions == []  # the pump unsubscribed


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def client(
    live: Live, token: str | None = TOKEN_1, *, in_query: bool = False, **options: Any
) -> connect:
    url, headers = live.url, {}
    if token is not None and in_query:
        url += f"?token={token}"
    elif token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return connect(url, additional_headers=headers, proxy=None, open_timeout=5, **options)


async def receive(ws: ClientConnection, timeout_s: float = 5.0) -> dict[str, Any]:
    """The next message that is not a heartbeat."""
    while True:
        message: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), timeout_s))
        if message["type"] != "heartbeat":
            return message


async def subscribe(
    ws: ClientConnection, channels: Iterable[str] = ("alerts", "stops"), **live_filter: Any
) -> dict[str, Any]:
    """Subscribe and return the snapshot."""
    request = {"op": "subscribe", "channels": list(channels), "filter": live_filter}
    await ws.send(orjson.dumps(request).decode())
    snapshot = await receive(ws)
    assert snapshot["type"] == "snapshot", snapshot
    return snapshot


async def ids_until_closed(ws: ClientConnection) -> list[int]:
    """The ids of the deltas that arrive until the server closes the connection."""
    ids: list[int] = []
    while True:
        try:
            ids.append(summary(await receive(ws))[2])
        except ConnectionClosed:
            return ids


async def assert_silent(ws: ClientConnection, seconds: float = 0.2) -> None:
    with pytest.raises(TimeoutError):
        await receive(ws, seconds)


def summary(message: dict[str, Any]) -> tuple[str, str, int]:
    """(type, change, id) of an alert delta; (type, "", stop_seq) of a visit."""
    if message["type"] == "alert":
        return "alert", message["change"], message["alert"]["id"]
    return message["type"], "", message["visit"]["stop_seq"]


# ---------------------------------------------------------------- authentication


@pytest.mark.parametrize(
    ("token", "in_query"), [(None, False), ("not-a-token", False), ("not-a-token", True)]
)
async def test_clients_without_a_valid_token_are_closed_with_4401(
    token: str | None, in_query: bool
) -> None:
    async with running_feed() as live, client(live, token, in_query=in_query) as ws:
        with pytest.raises(ConnectionClosed):
            await ws.recv()  # nothing arrives before the close
        assert ws.close_code == 4401
        assert (ws.close_reason or "").startswith("unauthorized")
        assert live.feed.clients == 0
        assert live.store.calls == []


async def test_static_tokens_compare_whole_tokens_and_refuse_empty_ones() -> None:
    tokens = StaticTokens(PRINCIPALS)
    assert await tokens.authenticate(TOKEN_2) == Principal(2, "dispatcher-2")
    assert await tokens.authenticate(TOKEN_2[:-1]) is None
    assert await tokens.authenticate(TOKEN_2 + "x") is None
    assert await tokens.authenticate("khóa-bí-mật") is None  # not ASCII: no TypeError
    with pytest.raises(ValueError, match="empty token"):
        StaticTokens({"": Principal(1, "anyone")})


# ---------------------------------------------------------------- snapshot and deltas


async def test_subscribe_gets_the_snapshot_then_the_deltas_in_order() -> None:
    store = InTestStore(alerts=[make_alert(1), make_alert(2)], visits=[make_visit(1)])
    async with running_feed(store) as live, client(live, in_query=True) as ws:
        snapshot = await subscribe(ws)
        assert [a["id"] for a in snapshot["alerts"]] == [1, 2]
        assert snapshot["alerts"][0] == alert_json(make_alert(1))
        assert snapshot["stop_visits"] == [visit_json(make_visit(1))]
        assert store.calls == [(PRINCIPALS[TOKEN_1], LiveFilter())]
        assert live.feed.clients == 1

        alert = make_alert(3)
        live.bus.publish(
            AlertEvent(Change.OPENED, alert),
            AlertEvent(Change.UPDATED, alert),
            AlertEvent(Change.ACKNOWLEDGED, make_alert(3, state=AlertState.ACKNOWLEDGED)),
            make_visit(2),
            AlertEvent(Change.ASSIGNED, make_alert(3, state=AlertState.ACKNOWLEDGED)),
            AlertEvent(Change.RESOLVED, make_alert(3, state=AlertState.RESOLVED)),
        )
        got = [await receive(ws) for _ in range(6)]
        assert [summary(m) for m in got] == [
            ("alert", "opened", 3),
            ("alert", "updated", 3),
            ("alert", "acknowledged", 3),
            ("stop_visit", "", 2),
            ("alert", "assigned", 3),
            ("alert", "resolved", 3),
        ]
        assert got[0]["alert"]["opened_at"] == "2026-12-04T01:15:30.250Z"
        assert got[0]["alert"]["kind"] == "wrong_route"
        assert got[2]["alert"]["state"] == "acknowledged"
        assert got[3]["visit"]["arrival_at"] == "2026-12-04T01:15:30.250Z"
        assert got[3]["visit"]["status"] == "visited"
        await assert_silent(ws)
    await until(lambda: live.feed.clients == 0)


async def test_deltas_during_the_snapshot_query_follow_the_snapshot() -> None:
    class SlowStore(InTestStore):
        async def __call__(self, principal: Principal, live_filter: LiveFilter) -> Snapshot:
            live.bus.publish(opened(make_alert(5)))  # while the query runs
            await asyncio.sleep(0.1)
            return await super().__call__(principal, live_filter)

    async with running_feed(SlowStore()) as live, client(live) as ws:
        await subscribe(ws)
        assert summary(await receive(ws)) == ("alert", "opened", 5)


async def test_a_client_never_sees_another_tenants_items() -> None:
    store = InTestStore(
        alerts=[make_alert(1, tenant_id=1), make_alert(2, tenant_id=2)],
        visits=[make_visit(1, tenant_id=1), make_visit(2, tenant_id=2)],
        leaky=True,  # the feed narrows even a faulty query's answer to the tenant
    )
    async with (
        running_feed(store) as live,
        client(live, TOKEN_1) as first,
        client(live, TOKEN_2) as second,
    ):
        snapshot_1, snapshot_2 = await subscribe(first), await subscribe(second)
        assert [a["id"] for a in snapshot_1["alerts"]] == [1]
        assert [a["id"] for a in snapshot_2["alerts"]] == [2]
        assert [v["tenant_id"] for v in snapshot_2["stop_visits"]] == [2]

        live.bus.publish(
            opened(make_alert(11, tenant_id=1)),
            make_visit(11, tenant_id=1),
            opened(make_alert(12, tenant_id=2)),
            make_visit(12, tenant_id=2),
        )
        assert [summary(await receive(second)) for _ in range(2)] == [
            ("alert", "opened", 12),
            ("stop_visit", "", 12),
        ]
        assert [summary(await receive(first)) for _ in range(2)] == [
            ("alert", "opened", 11),
            ("stop_visit", "", 11),
        ]
        await assert_silent(second)
        await assert_silent(first)


async def test_filters_by_vehicle_by_route_and_by_both() -> None:
    store = InTestStore(alerts=[make_alert(1, vehicle_id=7), make_alert(2, vehicle_id=8)])
    async with (
        running_feed(store) as live,
        client(live) as by_vehicle,
        client(live) as by_route,
        client(live) as by_both,
    ):
        assert [a["id"] for a in (await subscribe(by_vehicle, vehicles=[7]))["alerts"]] == [1]
        await subscribe(by_route, routes=[70])
        await subscribe(by_both, vehicles=[7], routes=[70])
        assert [call[1] for call in store.calls] == [
            LiveFilter(vehicles=frozenset({7})),
            LiveFilter(routes=frozenset({70})),
            LiveFilter(vehicles=frozenset({7}), routes=frozenset({70})),
        ]

        live.bus.publish(
            opened(make_alert(11, vehicle_id=7, route_run_id=70)),
            opened(make_alert(12, vehicle_id=8, route_run_id=70)),
            opened(make_alert(13, vehicle_id=None, route_run_id=70)),
            opened(make_alert(14, vehicle_id=7, route_run_id=71)),
            opened(make_alert(15, vehicle_id=8, route_run_id=None)),
            make_visit(16, vehicle_id=8, route_run_id=80),
            make_visit(17, vehicle_id=7, route_run_id=70),
            opened(make_alert(99, vehicle_id=7, route_run_id=70)),  # the last, for everyone
        )

        async def ids_until_last(ws: ClientConnection) -> list[int]:
            ids = [summary(await receive(ws))[2]]
            while ids[-1] != 99:
                ids.append(summary(await receive(ws))[2])
            return ids

        assert await ids_until_last(by_vehicle) == [11, 14, 17, 99]
        assert await ids_until_last(by_route) == [11, 12, 13, 17, 99]
        assert await ids_until_last(by_both) == [11, 17, 99]


async def test_a_new_subscribe_replaces_the_filter_and_sends_a_new_snapshot() -> None:
    store = InTestStore(alerts=[make_alert(1, vehicle_id=7), make_alert(2, vehicle_id=8)])
    async with running_feed(store) as live, client(live) as ws:
        assert [a["id"] for a in (await subscribe(ws, vehicles=[7]))["alerts"]] == [1]
        snapshot = await subscribe(ws, ["alerts"], vehicles=[8])
        assert [a["id"] for a in snapshot["alerts"]] == [2]
        assert snapshot["stop_visits"] == []
        live.bus.publish(
            opened(make_alert(11, vehicle_id=7)),
            make_visit(12, vehicle_id=8),  # stops are no longer subscribed
            opened(make_alert(13, vehicle_id=8)),
        )
        assert summary(await receive(ws)) == ("alert", "opened", 13)
        await assert_silent(ws)

        # A null filter, like a missing one, follows everything of the tenant.
        await ws.send(orjson.dumps({"op": "subscribe", "channels": ["alerts"], "filter": None}))
        snapshot = await receive(ws)
        assert [a["id"] for a in snapshot["alerts"]] == [1, 2]
        assert store.calls[-1][1] == LiveFilter()


# ---------------------------------------------------------------- bad messages


@pytest.mark.parametrize(
    ("payload", "error_field", "reason"),
    [
        ("not json", None, "not valid JSON"),
        ("[1, 2]", None, "JSON object"),
        ('{"channels": ["alerts"]}', "op", "Field required"),
        ('{"op": "unsubscribe", "channels": ["alerts"]}', "op", '"unsubscribe"'),
        ('{"op": "subscribe", "channels": ["alerts", "weather"]}', "channels[1]", '"weather"'),
        ('{"op": "subscribe", "channels": []}', "channels", "at least 1"),
        ('{"op": "subscribe", "channels": "alerts"}', "channels", '"alerts"'),
        (
            '{"op": "subscribe", "channels": ["alerts"], "filter": {"vehicles": [7, "8"]}}',
            "filter.vehicles[1]",
            'integer, got "8"',
        ),
        (
            '{"op": "subscribe", "channels": ["alerts"], "filter": {"routes": [true]}}',
            "filter.routes[0]",
            "integer, got true",
        ),
        (
            '{"op": "subscribe", "channels": ["alerts"], "filter": {"bbox": [106, 20, 105, 21]}}',
            "filter.bbox",
            "west <= east",
        ),
        (
            '{"op": "subscribe", "channels": ["alerts"], "filter": {"vehicle": [7]}}',
            "filter.vehicle",
            "Extra inputs",
        ),
    ],
)
async def test_a_bad_message_gets_an_error_naming_the_field_and_the_connection_stays(
    payload: str, error_field: str | None, reason: str
) -> None:
    async with running_feed(InTestStore(alerts=[make_alert(1)])) as live, client(live) as ws:
        await ws.send(payload)
        error = await receive(ws)
        assert error["type"] == "error"
        assert error["field"] == error_field
        assert reason in error["reason"], error["reason"]
        assert live.store.calls == []

        await ws.send(orjson.dumps({"op": "subscribe", "channels": ["alerts"]}))  # binary
        snapshot = await receive(ws)
        assert [a["id"] for a in snapshot["alerts"]] == [1]
        live.bus.publish(opened(make_alert(2)))
        assert summary(await receive(ws)) == ("alert", "opened", 2)


def make_position(
    device_id: int,
    *,
    tenant_id: int = 1,
    vehicle_id: int | None = None,
    at_s: float = 0.0,
    lat: float = 20.97,
    lon: float = 105.77,
) -> LivePosition:
    return LivePosition(
        tenant_id=tenant_id,
        device_id=device_id,
        device=f"truck-{device_id}",
        kind="truck",
        vehicle_id=vehicle_id,
        staff_id=None,
        time=T0 + dt.timedelta(seconds=at_s),
        lat=lat,
        lon=lon,
        speed_kmh=12.5,
        heading_deg=90.0,
    )


async def positions_until(
    ws: ClientConnection, wanted: Callable[[dict[int, dict[str, Any]]], bool]
) -> tuple[dict[int, dict[str, Any]], int]:
    """Apply ``positions`` frames until ``wanted`` holds; the positions by device and the
    number of frames it took."""
    seen: dict[int, dict[str, Any]] = {}
    frames = 0
    while not wanted(seen):
        message = await receive(ws)
        assert message["type"] == "positions", message
        frames += 1
        for row in message["rows"]:
            position = dict(zip(message["columns"], row, strict=True))
            seen[position["device_id"]] = position
    return seen, frames


async def drain(ws: ClientConnection) -> None:
    while True:
        await receive(ws)


async def test_positions_come_in_the_snapshot_then_in_batched_frames() -> None:
    store = InTestStore(alerts=[make_alert(1)], visits=[make_visit(1)])
    async with running_feed(store, positions_interval_s=0.02) as live:
        live.feed.seed_positions([make_position(7, vehicle_id=70, lat=20.5)])
        async with client(live) as ws:
            snapshot = await subscribe(ws, ["positions"])
            assert (snapshot["alerts"], snapshot["stop_visits"]) == ([], [])
            assert [(p["device_id"], p["lat"]) for p in snapshot["positions"]] == [(7, 20.5)]
            assert snapshot["positions"][0]["time"] == "2026-12-04T01:15:30.250Z"

            live.feed.publish_position(make_position(7, vehicle_id=70, at_s=5, lat=20.6))
            live.feed.publish_position(make_position(8, at_s=5, lat=20.7))
            seen, _ = await positions_until(ws, lambda seen: len(seen) == 2)
            assert (seen[7]["lat"], seen[8]["lat"]) == (20.6, 20.7)
            assert (seen[7]["vehicle_id"], seen[7]["speed_kmh"]) == (70, 12.5)
            assert seen[7]["t_ms"] == (T0.timestamp() + 5) * 1000

            # An older fix than the device's latest never moves the marker back.
            live.feed.publish_position(make_position(7, at_s=1, lat=99.0))
            live.bus.publish(opened(make_alert(2)), make_visit(2))  # not subscribed to these
            await assert_silent(ws)


def ticks(live: Live, path: str) -> float:
    """Positions ticks given to clients by ``path`` (direct: straight to the socket)."""
    value = live.feed.registry.get_sample_value(
        "sanitrack_live_position_ticks_total", {"path": path}
    )
    return value or 0.0


async def test_frames_go_straight_to_the_sockets_one_per_tenant_and_filter() -> None:
    """Clients with nothing waiting get each tick's frame straight on their socket: the same
    bytes for every client of a tenant with the same filter, never another tenant's rows."""
    async with (
        running_feed(positions_interval_s=0.02) as live,
        client(live, compression=None) as whole_1,
        client(live, compression=None) as whole_2,
        client(live, compression=None) as truck_70,
        client(live, compression=None) as also_70,
        client(live, TOKEN_2, compression=None) as other_70,
    ):
        for ws in (whole_1, whole_2):
            await subscribe(ws, ["positions", "alerts"])
        for ws in (truck_70, also_70, other_70):
            await subscribe(ws, ["positions"], vehicles=[70])
        for n in range(3):
            live.feed.publish_position(make_position(7, vehicle_id=70, at_s=n, lat=20 + n))
            live.feed.publish_position(make_position(8, vehicle_id=80, at_s=n, lat=30 + n))
            live.feed.publish_position(
                make_position(9, tenant_id=2, vehicle_id=70, at_s=n, lat=40 + n)
            )
            await asyncio.sleep(0.05)
        for ws in (whole_1, whole_2):
            seen, _ = await positions_until(ws, lambda seen: seen.get(8, {}).get("lat") == 32)
            assert set(seen) == {7, 8}
            assert (seen[7]["lat"], seen[7]["vehicle_id"], seen[8]["t_ms"]) == (
                22,
                70,
                (T0.timestamp() + 2) * 1000,
            )
        for ws in (truck_70, also_70):
            seen, _ = await positions_until(ws, lambda seen: seen.get(7, {}).get("lat") == 22)
            assert set(seen) == {7}
        seen, _ = await positions_until(other_70, lambda seen: seen.get(9, {}).get("lat") == 42)
        assert set(seen) == {9}
        for ws in (truck_70, also_70, other_70):
            await assert_silent(ws)
        assert ticks(live, "direct") >= 10  # five clients, three ticks, the first may queue
        # An alert after direct frames still reaches the clients through their senders.
        live.bus.publish(opened(make_alert(5)))
        assert summary(await receive(whole_1)) == ("alert", "opened", 5)
        assert summary(await receive(whole_2)) == ("alert", "opened", 5)


async def test_with_compression_frames_go_through_the_sender() -> None:
    """A compressed connection's frames differ per client: never written directly."""
    async with running_feed(positions_interval_s=0.02, deflate=True) as live, client(live) as ws:
        await subscribe(ws, ["positions"])
        assert ws.protocol.extensions, "the client should have negotiated per-message deflate"
        live.feed.publish_position(make_position(7, vehicle_id=70, lat=20.5))
        seen, _ = await positions_until(ws, lambda seen: 7 in seen)
        assert seen[7]["lat"] == 20.5
        assert (ticks(live, "direct"), ticks(live, "queued")) == (0, 1)


async def test_positions_follow_the_filter_and_the_tenant() -> None:
    store = InTestStore()
    async with (
        running_feed(store, positions_interval_s=0.02) as live,
        client(live) as by_vehicle,
        client(live) as in_box,
        client(live, TOKEN_2) as other_tenant,
    ):
        await subscribe(by_vehicle, ["positions"], vehicles=[70])
        await subscribe(in_box, ["positions"], bbox=[105.7, 20.9, 105.8, 21.0])
        await subscribe(other_tenant, ["positions"])
        live.feed.publish_position(make_position(7, vehicle_id=70, lat=20.5))  # out of box
        live.feed.publish_position(make_position(8, vehicle_id=80, lat=20.95))
        live.feed.publish_position(make_position(9, tenant_id=2, vehicle_id=90))
        seen, _ = await positions_until(by_vehicle, lambda seen: 7 in seen)
        assert set(seen) == {7}
        seen, _ = await positions_until(in_box, lambda seen: 8 in seen)
        assert set(seen) == {8}
        seen, _ = await positions_until(other_tenant, lambda seen: 9 in seen)
        assert set(seen) == {9}
        await assert_silent(by_vehicle)
        await assert_silent(in_box)
        await assert_silent(other_tenant)


async def test_a_route_filter_follows_the_positions_of_the_routes_vehicles() -> None:
    store = InTestStore(route_vehicles={5: 70})
    async with running_feed(store, positions_interval_s=0.02) as live, client(live) as ws:
        await subscribe(ws, ["positions"], routes=[5])
        live.feed.publish_position(make_position(7, vehicle_id=70))
        live.feed.publish_position(make_position(8, vehicle_id=80))
        seen, _ = await positions_until(ws, lambda seen: 7 in seen)
        assert set(seen) == {7}
        await assert_silent(ws)


async def test_a_client_that_reads_slowly_gets_the_latest_position_of_each_device() -> None:
    """While the client's socket is full, 40 rounds of fixes of 6,000 devices wait coalesced:
    when it reads again it finds each device's last fix in a few frames, not 40 rounds.
    (A frame is ~300 kB; the server's send buffer holds a few, however it is tuned.)"""
    devices, rounds = 6000, 40
    async with running_feed(positions_interval_s=0.01, max_position_lag_s=60) as live:
        slow_socket = socket.socket()
        slow_socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16_384)
        slow_socket.setblocking(False)
        await asyncio.get_running_loop().sock_connect(slow_socket, ("127.0.0.1", live.port))
        async with client(live, sock=slow_socket, compression=None, max_queue=1) as ws:
            await subscribe(ws, ["positions"])
            for n in range(rounds):
                for device_id in range(devices):
                    live.feed.publish_position(make_position(device_id, at_s=n, lat=20 + n / 100))
                await asyncio.sleep(0.02)
            last_lat = 20 + (rounds - 1) / 100
            _, frames = await positions_until(
                ws,
                lambda seen: (
                    len(seen) == devices and all(p["lat"] == last_lat for p in seen.values())
                ),
            )
            assert frames < rounds / 2, f"{frames} frames: positions were not coalesced"


async def test_a_client_that_stops_reading_positions_is_closed_with_4408() -> None:
    async with running_feed(
        positions_interval_s=0.01, max_position_lag_s=0.3, close_timeout_s=60
    ) as live:
        slow_socket = socket.socket()
        slow_socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16_384)
        slow_socket.setblocking(False)
        await asyncio.get_running_loop().sock_connect(slow_socket, ("127.0.0.1", live.port))
        async with (
            client(live, sock=slow_socket, compression=None, max_queue=1) as slow,
            client(live, compression=None) as fast,
        ):
            await subscribe(slow, ["positions"])
            await subscribe(fast, ["positions"])
            n = 0
            while live.feed.dropped_too_slow == 0:
                n += 1
                assert n < 500, "the slow client was never dropped"
                for device_id in range(300):
                    live.feed.publish_position(make_position(device_id, at_s=n))
                await asyncio.sleep(0.01)
            await until(lambda: live.feed.clients == 1)
            with pytest.raises(ConnectionClosed):
                await drain(slow)
            assert slow.close_code == 4408
            seen, _ = await positions_until(
                fast,
                lambda seen: (
                    len(seen) == 300
                    and seen[0]["t_ms"] == round(make_position(0, at_s=n).time.timestamp() * 1000)
                ),
            )
            assert len(seen) == 300


async def test_a_failing_snapshot_query_closes_with_1011() -> None:
    async with running_feed(InTestStore(failing=True)) as live, client(live) as ws:
        await ws.send(orjson.dumps({"op": "subscribe", "channels": ["alerts"]}).decode())
        with pytest.raises(ConnectionClosed):
            await receive(ws)
        assert ws.close_code == 1011


# ---------------------------------------------------------------- heartbeat and slow clients


async def test_heartbeats_arrive_every_heartbeat_s() -> None:
    async with running_feed(heartbeat_s=0.2) as live, client(live) as ws:
        started = time.monotonic()
        beats = [orjson.loads(await asyncio.wait_for(ws.recv(), 2)) for _ in range(3)]
        assert 0.3 < time.monotonic() - started < 3.0
        assert [beat["type"] for beat in beats] == ["heartbeat"] * 3
        for beat in beats:
            at = dt.datetime.fromisoformat(beat["at"])
            assert beat["at"].endswith("Z")
            assert abs(at - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=5)


async def test_a_client_that_never_reads_is_closed_with_4408_and_others_get_every_delta() -> None:
    """Only a full socket makes the outbox fill, so the slow client's receive buffer is small,
    nothing is compressed, and every delta carries 64 KiB: a few megabytes fill the socket."""
    count, evidence = 300, {"trace": "x" * 65_536}
    async with running_feed(max_queued_per_client=4, close_timeout_s=60) as live:
        slow_socket = socket.socket()
        slow_socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32_768)
        slow_socket.setblocking(False)
        await asyncio.get_running_loop().sock_connect(slow_socket, ("127.0.0.1", live.port))
        async with (
            client(live, sock=slow_socket, compression=None, max_queue=1) as slow,
            client(live, compression=None) as fast,
        ):
            await subscribe(slow)
            await subscribe(fast)
            for alert_id in range(1, count + 1):
                # One at a time: the fast client reads each before the next is published.
                live.bus.publish(
                    AlertEvent(Change.UPDATED, make_alert(alert_id, evidence=evidence))
                )
                assert summary(await receive(fast)) == ("alert", "updated", alert_id)
            assert live.feed.dropped_too_slow == 1
            assert live.feed.clients == 1

            # Reading at last, the slow client finds what fitted, then the close.
            seen = await ids_until_closed(slow)
            assert slow.close_code == 4408
            assert slow.close_reason == "too slow"
            assert 0 < len(seen) < count
            assert seen == list(range(1, len(seen) + 1))
            await assert_silent(fast)


@pytest.mark.parametrize("overflow_raises", [True, False])
async def test_a_feed_that_falls_behind_the_bus_sends_clients_away_to_resync(
    overflow_raises: bool,
) -> None:
    async with running_feed(bus=InTestBus(overflow_raises), bus_max_queued=4) as live:
        async with client(live) as ws:
            await subscribe(ws)
            # Published without a pause, more than the subscription holds: the bus ends it.
            live.bus.publish(*(opened(make_alert(alert_id)) for alert_id in range(1, 11)))
            seen = await ids_until_closed(ws)
            assert ws.close_code == 1013
            assert seen == [1, 2, 3, 4]
        async with client(live) as ws:
            await subscribe(ws)
            live.bus.publish(opened(make_alert(20)))
            assert summary(await receive(ws)) == ("alert", "opened", 20)


# ---------------------------------------------------------------- serialisation


def test_alert_json_is_plain_json_with_utc_times_and_enum_values() -> None:
    alert = make_alert(
        1,
        evidence={"since": dt.datetime(2026, 12, 4, 8, 15, tzinfo=ICT), "kind": Change.OPENED},
    )
    naive = dt.datetime(2026, 12, 4, 1, 0)  # stored times are UTC
    as_json = alert_json(dataclasses.replace(alert, resolved_at=naive, state=AlertState.RESOLVED))
    assert orjson.loads(orjson.dumps(as_json)) == as_json
    assert as_json["opened_at"] == "2026-12-04T01:15:30.250Z"
    assert as_json["resolved_at"] == "2026-12-04T01:00:00.000Z"
    assert as_json["state"] == "resolved"
    assert as_json["severity"] == "warning"
    assert as_json["evidence"] == {"since": "2026-12-04T01:15:00.000Z", "kind": "opened"}
    assert as_json["message"] == "Xe 29C-00001 đi sai tuyến"
    visit = visit_json(make_visit(3))
    assert visit["departure_at"] is None
    assert visit["evidence"] == "dwell"
    assert visit["lat"] == 20.97123
