"""The WebSocket live feed (ARCHITECTURE §6): positions, alerts and stop visits as they
happen.

One subscription to the alert bus feeds every connection: the pump fans each item out to
the connections that want it, encoded once, into a bounded outbox per connection, and
never waits. Each connection's own sender drains its outbox into its socket, so a slow
client fills only its own outbox; when that is full the client is closed with 4408.

Positions are published in process (``publish_position``, from the ingest's in-order
stream) and sent every ``positions_interval_s`` as one ``positions`` frame per client
holding the latest fix of each device that moved, as compact rows (a thousand vehicles at
1 Hz are ~60 kB/s per client; what does not change, such as the device's name and kind,
is in the snapshot and in /api/v1/devices): a client that reads slowly gets fewer,
fresher frames rather than a backlog, and is closed with 4408 when positions have waited
for it longer than ``max_position_lag_s``. A client with nothing waiting gets the tick's
frame written straight to its socket, the same bytes for every client of the tenant with
the same filter (api/live_wire.py); the others go through their sender.

The conversation on ``GET /ws/live``::

    client: {"op": "subscribe", "channels": ["positions", "alerts", "stops"],
             "filter": {"vehicles": [...], "routes": [...], "bbox": [w, s, e, n]}}
    server: {"type": "snapshot", "positions": [...], "alerts": [...], "stop_visits": [...]}
    server: {"type": "positions",
             "columns": ["device_id", "vehicle_id", "t_ms", "lat", "lon", "speed_kmh",
                         "heading_deg"],
             "rows": [[7, 70, 1764836130250, 20.97123, 105.77231, 23.4, 181.0], ...]}
            {"type": "alert", "change": "opened", "alert": {...}}
            {"type": "stop_visit", "visit": {...}}
            {"type": "heartbeat", "at": "2026-12-04T08:15:30.250Z"}
            {"type": "error", "field": "filter.vehicles[0]", "reason": "..."}

A delta may repeat what the snapshot already shows (see ``_Connection.hold``): clients
apply alerts by ``id`` and stop visits by ``(route_run_id, stop_seq, arrival_at)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, Protocol

from fastapi import APIRouter, FastAPI, WebSocket, WebSocketDisconnect
from prometheus_client import CollectorRegistry, Counter, Gauge

from alerts.models import AlertEvent, StopVisit
from api.auth import READ_OPERATIONS, Authenticator, Principal, bearer_token
from api.live_messages import (
    POSITION_COLUMNS,
    Channel,
    LiveFilter,
    LivePosition,
    RequestError,
    Snapshot,
    SnapshotQuery,
    SubscribeRequest,
    alert_json,
    encode,
    parse_request,
    position_json,
    position_row,
    utc_text,
    visit_json,
)
from api.live_wire import DirectSocket, ServerSendMiddleware, direct_socket, text_frame
from sanitrack.clock import Clock, SystemClock

log = logging.getLogger(__name__)

CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_SLOW = 4408
CLOSE_INTERNAL_ERROR = 1011
CLOSE_TRY_AGAIN_LATER = 1013
RESUBSCRIBE_PAUSE_S = 1.0

FeedItem = AlertEvent | StopVisit
_POSITIONS_HEAD = b'{"type":"positions","columns":' + encode(list(POSITION_COLUMNS)) + b',"rows":['


class BusSubscription(Protocol):
    def __aiter__(self) -> AsyncIterator[FeedItem]: ...

    async def __anext__(self) -> FeedItem: ...

    def close(self) -> None:
        """Unsubscribe."""
        ...


class AlertBus(Protocol):
    """What the live feed needs of the alert bus (alerts.LocalBus)."""

    def subscribe(self, max_queued: int) -> BusSubscription:
        """Every item published from now on, until the bus ends the iteration (or raises)
        because ``max_queued`` items were waiting."""
        ...


# ---------------------------------------------------------------- connections


class _Connection:
    """One client: its principal, its subscription, its bounded outbox of alerts and visits,
    and its pending positions, coalesced to the latest per device."""

    def __init__(self, principal: Principal, max_queued: int) -> None:
        self.principal = principal
        self.subscription: SubscribeRequest | None = None
        self.route_vehicles: frozenset[int] = frozenset()
        self.close_code: int | None = None  # set when the server ends the connection
        self.close_reason = ""
        self.ended = asyncio.Event()
        self.direct: DirectSocket | None = None  # the socket, when frames may go straight in
        self._max_queued = max_queued
        self._outbox: deque[str] = deque()
        self._held: list[str] | None = None
        self._positions: dict[int, bytes] = {}
        self._shared: _SharedPositions | None = None  # a tick taken whole, not yet sent
        self.positions_waiting_since: float | None = None  # monotonic; None: none waiting
        self._not_empty = asyncio.Event()

    def wants(
        self, channel: Channel, tenant_id: int, vehicle_id: int | None, route_run_id: int | None
    ) -> bool:
        subscription = self.subscription
        return (
            subscription is not None
            and not self.ended.is_set()
            and tenant_id == self.principal.tenant_id
            and channel in subscription.channels
            and subscription.filter.matches(vehicle_id, route_run_id)
        )

    def wants_positions_of(self, tenant_id: int) -> bool:
        subscription = self.subscription
        return (
            subscription is not None
            and not self.ended.is_set()
            and tenant_id == self.principal.tenant_id
            and "positions" in subscription.channels
        )

    def offer(self, message: str) -> bool:
        """Queue ``message`` without waiting; False when the outbox is full: too slow."""
        if len(self._outbox) + len(self._held or ()) >= self._max_queued:
            return False
        if self._held is not None:
            self._held.append(message)
        else:
            self._outbox.append(message)
            self._not_empty.set()
        return True

    def offer_positions(
        self, batch: Iterable[tuple[LivePosition, bytes]] | _SharedPositions, now: float
    ) -> None:
        """Merge positions in, replacing what is still pending of the same device: a slow
        client gets the latest of each, never a backlog. Never blocks, never overflows.

        A client that follows everything and has sent all it had takes the tick's shared
        frame as it is: built once for all such clients, not once per client.
        """
        assert self.subscription is not None
        if isinstance(batch, _SharedPositions):
            if not self._positions and self._shared is None and self._held is None:
                self._shared = batch
            else:
                self._absorb_shared()
                self._positions.update(batch.rows)
        else:
            self._absorb_shared()
            wanted = self.subscription.filter
            for position, message in batch:
                if wanted.matches_position(position, self.route_vehicles):
                    self._positions[position.device_id] = message
        if self._positions or self._shared is not None:
            if self.positions_waiting_since is None:
                self.positions_waiting_since = now
            if self._held is None:
                self._not_empty.set()

    def idle(self) -> bool:
        """Nothing waits to be sent and no snapshot is being taken: a frame may go now."""
        return (
            not self._outbox
            and not self._positions
            and self._shared is None
            and self._held is None
            and not self.ended.is_set()
        )

    def _absorb_shared(self) -> None:
        """Fold a shared frame not yet sent into the pending positions (they are newer)."""
        if self._shared is not None:
            self._positions = {**self._shared.rows, **self._positions}
            self._shared = None

    def hold(self, subscription: SubscribeRequest) -> None:
        """Follow ``subscription`` from now on, holding its deltas back until its snapshot.

        Deltas are followed *before* the snapshot is read, so every change is in the
        snapshot, in the deltas after it, or in both; never in neither.
        """
        self.subscription = subscription
        self._held = []
        self._positions.clear()
        self._shared = None
        self.positions_waiting_since = None

    def release(self, snapshot: str, route_vehicles: frozenset[int]) -> bool:
        """Queue ``snapshot``, then the deltas held since ``hold``; False when too slow."""
        self.route_vehicles = route_vehicles
        held, self._held = self._held or [], None
        if len(self._outbox) + 1 + len(held) > self._max_queued:
            return False
        self._outbox.append(snapshot)
        self._outbox.extend(held)
        self._not_empty.set()
        return True

    async def next_message(self) -> str:
        """Alerts and visits first, in order; then every pending position in one frame."""
        while True:
            if self._outbox:
                return self._outbox.popleft()
            if self._shared is not None and self._held is None:
                frame, self._shared = self._shared.frame, None
                self.positions_waiting_since = None
                return frame
            if self._positions and self._held is None:
                frame = _positions_frame(self._positions)
                self._positions = {}
                self.positions_waiting_since = None
                return frame
            self._not_empty.clear()
            await self._not_empty.wait()

    def end(self, code: int | None = None, reason: str = "") -> None:
        """Stop serving; ``code`` closes the socket with it (None: the client is gone)."""
        if not self.ended.is_set():
            self.close_code, self.close_reason = code, reason
            self.ended.set()


def _by_device(position: LivePosition) -> int:
    return position.device_id


def _positions_json(rows: Mapping[int, bytes]) -> bytes:
    return _POSITIONS_HEAD + b",".join(rows.values()) + b"]}"


def _positions_frame(rows: Mapping[int, bytes]) -> str:
    return _positions_json(rows).decode()


def _filtered_wire(
    batch: Iterable[tuple[LivePosition, bytes]], wanted: LiveFilter, route_vehicles: frozenset[int]
) -> bytes:
    """The frame of the positions ``wanted`` takes from ``batch``; empty when none."""
    rows = {p.device_id: row for p, row in batch if wanted.matches_position(p, route_vehicles)}
    return text_frame(_positions_json(rows)) if rows else b""


class _SharedPositions:
    """One tenant's positions of one tick; its frame, and its bytes on the wire, are built
    at most once."""

    __slots__ = ("_frame", "_wire", "rows")

    def __init__(self, rows: dict[int, bytes]) -> None:
        self.rows = rows
        self._frame: str | None = None
        self._wire: bytes | None = None

    @property
    def frame(self) -> str:
        if self._frame is None:
            self._frame = _positions_frame(self.rows)
        return self._frame

    @property
    def wire(self) -> bytes:
        """The whole WebSocket frame, as every client's socket gets it."""
        if self._wire is None:
            self._wire = text_frame(_positions_json(self.rows))
        return self._wire


# ---------------------------------------------------------------- the feed


class LiveFeed:
    """The live feed's state: connected clients, the bus pump and the heartbeat.

    ``run()`` belongs in the caller's task group; ``serve`` is the WebSocket endpoint.
    """

    def __init__(
        self,
        authenticator: Authenticator,
        bus: AlertBus,
        snapshot: SnapshotQuery,
        *,
        heartbeat_s: float = 15.0,
        max_queued_per_client: int = 1000,
        bus_max_queued: int = 10_000,
        close_timeout_s: float = 10.0,
        positions_interval_s: float = 0.1,
        max_position_lag_s: float = 30.0,
        clock: Clock | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        for name, value in (
            ("heartbeat_s", heartbeat_s),
            ("max_queued_per_client", max_queued_per_client),
            ("bus_max_queued", bus_max_queued),
            ("close_timeout_s", close_timeout_s),
            ("positions_interval_s", positions_interval_s),
            ("max_position_lag_s", max_position_lag_s),
        ):
            if not value > 0:
                raise ValueError(f"LiveFeed: {name} must be > 0, got {value!r}")
        self._authenticator = authenticator
        self._bus = bus
        self._snapshot = snapshot
        self._heartbeat_s = heartbeat_s
        self._max_queued_per_client = max_queued_per_client
        self._bus_max_queued = bus_max_queued
        self._close_timeout_s = close_timeout_s
        self._positions_interval_s = positions_interval_s
        self._max_position_lag_s = max_position_lag_s
        self._clock = clock or SystemClock()
        self._connections: set[_Connection] = set()
        self._latest: dict[int, LivePosition] = {}  # by device id
        self._pending: dict[int, LivePosition] = {}  # published since the last tick
        self._encoded: dict[int, tuple[LivePosition, bytes]] = {}  # snapshot JSON by device
        self._dropped_too_slow = 0
        self.registry = registry or CollectorRegistry()
        self._clients_gauge = Gauge(
            "sanitrack_live_clients", "Connected live feed clients", registry=self.registry
        )
        self._closed_by_server = Counter(
            "sanitrack_live_clients_closed",
            "Live feed clients the server closed, by reason",
            ["reason"],
            registry=self.registry,
        )
        frames = Counter(
            "sanitrack_live_position_ticks",
            "Positions of a tick given to a client: written straight to its socket (direct),"
            " or queued for its sender (queued: filtered, busy or backed-up clients)",
            ["path"],
            registry=self.registry,
        )
        self._ticks_direct = frames.labels("direct")
        self._ticks_queued = frames.labels("queued")

    @property
    def clients(self) -> int:
        """Authenticated clients connected now."""
        return len(self._connections)

    @property
    def dropped_too_slow(self) -> int:
        """Clients closed with 4408 since start."""
        return self._dropped_too_slow

    async def run(self) -> None:
        """Feed the connections from the bus and the published positions, and send
        heartbeats, until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._pump(), name="live-pump")
            tasks.create_task(self._heartbeat(), name="live-heartbeat")
            tasks.create_task(self._positions_tick(), name="live-positions")

    # -------------------------------------------------------- positions

    def publish_position(self, position: LivePosition) -> None:
        """A device's new latest position (never waits); an older one than known is ignored."""
        known = self._latest.get(position.device_id)
        if known is not None and known.time >= position.time:
            return
        self._latest[position.device_id] = position
        self._pending[position.device_id] = position

    def seed_positions(self, positions: Iterable[LivePosition]) -> None:
        """The last stored positions, so that a snapshot after a restart is not empty."""
        for position in positions:
            known = self._latest.get(position.device_id)
            if known is None or known.time < position.time:
                self._latest[position.device_id] = position

    def latest_positions(self, tenant_id: int) -> list[LivePosition]:
        return [p for p in self._latest.values() if p.tenant_id == tenant_id]

    def latest_positions_json(self, tenant_id: int) -> bytes:
        """The tenant's latest positions as a JSON array by device id, each encoded once
        per fix (what /api/v1/positions/latest answers)."""
        positions = sorted(self.latest_positions(tenant_id), key=_by_device)
        return b"[" + b",".join(self._position_json(p) for p in positions) + b"]"

    async def _positions_tick(self) -> None:
        """Every ``positions_interval_s``: what was published since, to whoever wants it.

        Each position is encoded once; a connection with no filter takes the tenant's whole
        batch in one dict update, so the cost per client is one merge, not one per fix.
        """
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            # On a fixed schedule: a slow flush does not push every later frame back.
            next_at = max(next_at + self._positions_interval_s, loop.time())
            await asyncio.sleep(next_at - loop.time())
            if self._pending:
                self.flush_positions()

    def flush_positions(self) -> None:
        pending, self._pending = self._pending, {}
        by_tenant: dict[int, list[tuple[LivePosition, bytes]]] = {}
        for position in pending.values():
            by_tenant.setdefault(position.tenant_id, []).append(
                (position, encode(position_row(position)))
            )
        whole = {
            tenant: _SharedPositions({p.device_id: message for p, message in batch})
            for tenant, batch in by_tenant.items()
        }
        # Filtered frames by (tenant, filter, the routes' vehicles): the dispatchers of one
        # area share theirs as the whole company's followers share the tenant's.
        filtered: dict[tuple[int, LiveFilter, frozenset[int]], bytes] = {}
        now = self._clock.monotonic()
        direct_ticks = queued_ticks = 0
        for connection in self._connections:
            tenant_id = connection.principal.tenant_id
            if tenant_id not in by_tenant or not connection.wants_positions_of(tenant_id):
                continue
            assert connection.subscription is not None
            wanted = connection.subscription.filter
            direct = connection.direct
            if direct is not None and connection.idle():
                if wanted.everything:
                    wire = whole[tenant_id].wire
                else:
                    key = (tenant_id, wanted, connection.route_vehicles)
                    found = filtered.get(key)
                    if found is None:
                        found = filtered[key] = _filtered_wire(
                            by_tenant[tenant_id], wanted, connection.route_vehicles
                        )
                    if not found:
                        continue  # nothing of this tick for this client
                    wire = found
                if direct.write(wire):
                    direct_ticks += 1
                    continue
            if wanted.everything:
                connection.offer_positions(whole[tenant_id], now)
            else:
                connection.offer_positions(by_tenant[tenant_id], now)
            queued_ticks += 1
            waiting = connection.positions_waiting_since
            if waiting is not None and now - waiting > self._max_position_lag_s:
                self._drop_too_slow(connection)
        self._ticks_direct.inc(direct_ticks)
        self._ticks_queued.inc(queued_ticks)

    # -------------------------------------------------------- the pump

    async def _pump(self) -> None:
        behind = False
        while True:
            with contextlib.closing(self._bus.subscribe(self._bus_max_queued)) as subscription:
                if behind:
                    # Items were lost, so no client's view is current. Subscribed again
                    # first, so that reconnecting clients miss nothing after their fresh
                    # snapshot, now send them all away.
                    for connection in self._connections:
                        self._close(
                            connection, CLOSE_TRY_AGAIN_LATER, "feed restarted, reconnect", "resync"
                        )
                    # A bus that keeps ending subscriptions (shutting down) must not spin.
                    await asyncio.sleep(RESUBSCRIBE_PAUSE_S)
                await self._forward(subscription)
                behind = True

    async def _forward(self, subscription: BusSubscription) -> None:
        """Fan out every item until the bus drops the subscription: the pump fell behind."""
        while True:
            try:
                item = await anext(subscription)
            except StopAsyncIteration:
                log.error("the alert bus ended the live feed's subscription; clients resync")
                return
            except Exception:
                # How the bus says it dropped us (alerts.Overflowed is not imported here,
                # so any error of the bus's counts, logged in full).
                log.exception("the alert bus dropped the live feed's subscription; clients resync")
                return
            self._fan_out(item)

    def _fan_out(self, item: FeedItem) -> None:
        channel: Channel
        if isinstance(item, AlertEvent):
            channel, alert = "alerts", item.alert
            tenant_id, vehicle_id, route_run_id = (
                alert.tenant_id,
                alert.vehicle_id,
                alert.route_run_id,
            )
        else:
            channel = "stops"
            tenant_id, vehicle_id, route_run_id = item.tenant_id, item.vehicle_id, item.route_run_id
        encoded: str | None = None  # once for all connections, and only if one wants it
        for connection in self._connections:
            if connection.wants(channel, tenant_id, vehicle_id, route_run_id):
                encoded = encoded or encode(_delta(item)).decode()
                self._deliver(connection, encoded)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_s)
            message = encode({"type": "heartbeat", "at": utc_text(self._clock.now())}).decode()
            for connection in self._connections:
                if not connection.ended.is_set():
                    self._deliver(connection, message)

    def _deliver(self, connection: _Connection, message: str) -> None:
        if not connection.offer(message):
            self._drop_too_slow(connection)

    def _drop_too_slow(self, connection: _Connection) -> None:
        if self._close(connection, CLOSE_TOO_SLOW, "too slow", "too_slow"):
            self._dropped_too_slow += 1
            log.warning(
                "live client too slow, closing it",
                extra={
                    "tenant_id": connection.principal.tenant_id,
                    "principal": connection.principal.name,
                    "max_queued_per_client": self._max_queued_per_client,
                },
            )

    def _close(self, connection: _Connection, code: int, reason: str, metric: str) -> bool:
        """End ``connection`` with ``code``; False when it had ended already."""
        if connection.ended.is_set():
            return False
        self._closed_by_server.labels(metric).inc()
        connection.end(code, reason)
        return True

    # -------------------------------------------------------- one connection

    async def serve(self, websocket: WebSocket) -> None:
        """The ``/ws/live`` endpoint: authenticate, then converse until either side ends."""
        token = bearer_token(websocket)
        principal = await self._authenticator.authenticate(token) if token else None
        await websocket.accept()
        if principal is None:
            await websocket.close(CLOSE_UNAUTHORIZED, "unauthorized: a valid bearer token needed")
            return
        if principal.role not in READ_OPERATIONS:
            await websocket.close(CLOSE_FORBIDDEN, f"the role {principal.role} may not follow")
            return
        connection = _Connection(principal, self._max_queued_per_client)
        connection.direct = direct_socket(websocket.scope)
        self._connections.add(connection)
        self._clients_gauge.set(self.clients)
        try:
            async with asyncio.TaskGroup() as tasks:
                receiving = tasks.create_task(self._receive(websocket, connection), name="live-in")
                sending = tasks.create_task(self._send(websocket, connection), name="live-out")
                await connection.ended.wait()
                # The sender may be waiting on a full socket; cancelling it there is safe,
                # nothing of the message has been written yet.
                receiving.cancel()
                sending.cancel()
        finally:
            self._connections.discard(connection)
            self._clients_gauge.set(self.clients)
        if connection.close_code is not None:
            # The close frame queues behind what the socket still holds; a client that never
            # reads again never gets it, and then the server gives up waiting.
            with contextlib.suppress(TimeoutError, WebSocketDisconnect):
                await asyncio.wait_for(
                    websocket.close(connection.close_code, connection.close_reason),
                    self._close_timeout_s,
                )

    async def _receive(self, websocket: WebSocket, connection: _Connection) -> None:
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                payload = message.get("text")
                if payload is None:
                    payload = message.get("bytes") or b""
                await self._answer(connection, parse_request(payload))
        finally:
            connection.end()

    async def _answer(
        self, connection: _Connection, request: SubscribeRequest | RequestError
    ) -> None:
        if isinstance(request, RequestError):
            error = {"type": "error", "field": request.field, "reason": request.reason}
            self._deliver(connection, encode(error).decode())
            return
        connection.hold(request)
        try:
            snapshot = await self._snapshot(connection.principal, request.filter)
        except Exception:
            log.exception(
                "live snapshot failed", extra={"tenant_id": connection.principal.tenant_id}
            )
            self._close(connection, CLOSE_INTERNAL_ERROR, "snapshot unavailable", "snapshot_failed")
            return
        message = self._snapshot_message(connection.principal, request, snapshot)
        if not connection.release(message.decode(), snapshot.route_vehicles):
            self._drop_too_slow(connection)

    def _snapshot_message(
        self, principal: Principal, request: SubscribeRequest, snapshot: Snapshot
    ) -> bytes:
        # The query is the caller's; the tenant and the filter are checked here again, so
        # that a query that reads too much shows in the log, not on another tenant's map.
        alerts = [
            a
            for a in snapshot.alerts
            if a.tenant_id == principal.tenant_id
            and request.filter.matches(a.vehicle_id, a.route_run_id)
        ]
        visits = [
            v
            for v in snapshot.stop_visits
            if v.tenant_id == principal.tenant_id
            and request.filter.matches(v.vehicle_id, v.route_run_id)
        ]
        extra = len(snapshot.alerts) + len(snapshot.stop_visits) - len(alerts) - len(visits)
        if extra:
            log.warning(
                "live snapshot query returned items outside the tenant or filter; left out",
                extra={"tenant_id": principal.tenant_id, "left_out": extra},
            )
        head = encode(
            {
                "type": "snapshot",
                "alerts": [alert_json(a) for a in alerts] if "alerts" in request.channels else [],
                "stop_visits": (
                    [visit_json(v) for v in visits] if "stops" in request.channels else []
                ),
            }
        )
        positions = []
        if "positions" in request.channels:
            positions = [
                self._position_json(p)
                for p in self.latest_positions(principal.tenant_id)
                if request.filter.matches_position(p, snapshot.route_vehicles)
            ]
        return head[:-1] + b',"positions":[' + b",".join(positions) + b"]}"

    def _position_json(self, position: LivePosition) -> bytes:
        """A position's snapshot JSON, encoded once per fix: when many clients reconnect at
        once (a restart, a network blip), ten thousand devices are not encoded per client."""
        cached = self._encoded.get(position.device_id)
        if cached is None or cached[0] is not position:
            cached = (position, encode(position_json(position)))
            self._encoded[position.device_id] = cached
        return cached[1]

    @staticmethod
    async def _send(websocket: WebSocket, connection: _Connection) -> None:
        try:
            while True:
                message = await connection.next_message()
                await websocket.send_text(message)
        except WebSocketDisconnect:
            pass
        finally:
            connection.end()


def _delta(item: FeedItem) -> dict[str, Any]:
    if isinstance(item, AlertEvent):
        return {"type": "alert", "change": item.change.value, "alert": alert_json(item.alert)}
    return {"type": "stop_visit", "visit": visit_json(item)}


def install_live(app: FastAPI, feed: LiveFeed) -> None:
    """``GET /ws/live`` served by ``feed`` on ``app``, with each client's socket at hand for
    the positions frames (``ServerSendMiddleware``); run ``feed.run()`` beside the server."""
    router = APIRouter()
    router.add_api_websocket_route("/ws/live", feed.serve, name="live")
    app.include_router(router)
    app.add_middleware(ServerSendMiddleware)
