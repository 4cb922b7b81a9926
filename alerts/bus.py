"""The alert bus (ARCHITECTURE §4): committed alert changes and stop visits, across processes
over PostgreSQL LISTEN/NOTIFY, then fanned out in-process to bounded subscribers.

A NOTIFY is sent in the transaction that made the change and delivered only when it commits,
so a listener never hears of a change that was rolled back. The payload names the row (the
limit is 8000 bytes, evidence can be larger); the listener reads the row back.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import orjson
import psycopg
from psycopg import AsyncConnection

from alerts.errors import AlertsError, InvalidValue, Overflowed
from alerts.models import AlertEvent, Change, StopVisit
from alerts.service import alerts_by_id
from alerts.visits import find_visits
from storage import Pool

log = logging.getLogger(__name__)

CHANNEL = "sanitrack_alerts"
VISITS_CHANNEL = "sanitrack_stop_visits"

BusItem = AlertEvent | StopVisit


async def notify(conn: AsyncConnection[Any], events: Sequence[AlertEvent]) -> None:
    """Announce alert changes; call in the transaction that made them."""
    await _notify(
        conn,
        CHANNEL,
        [{"id": e.alert.id, "tenant_id": e.alert.tenant_id, "change": e.change} for e in events],
    )


async def notify_visits(conn: AsyncConnection[Any], visits: Sequence[StopVisit]) -> None:
    """Announce recorded stop visits; call in the transaction that recorded them."""
    await _notify(
        conn,
        VISITS_CHANNEL,
        [
            {
                "tenant_id": v.tenant_id,
                "route_run_id": v.route_run_id,
                "stop_seq": v.stop_seq,
                "arrival_at": v.arrival_at,
            }
            for v in visits
        ],
    )


async def _notify(conn: AsyncConnection[Any], channel: str, payloads: list[dict[str, Any]]) -> None:
    if payloads:  # one statement; the function scan calls pg_notify in the array's order
        await conn.execute(
            "SELECT count(pg_notify(%s, payload)) FROM unnest(%s::text[]) AS payload",
            (channel, [orjson.dumps(p).decode() for p in payloads]),
        )


class AlertListener:
    """LISTENs on its own connection; ``events()`` yields the changed alerts and visits as
    stored, read back through ``pool``.

    A dropped connection is reopened with jittered back-off; what was announced meanwhile is
    lost, so consumers resynchronise from ``open_alerts`` when ``reconnects`` grows.
    """

    def __init__(
        self,
        database_url: str,
        pool: Pool,
        *,
        max_queued: int = 10_000,
        batch_max: int = 500,
        health_check_s: float = 30.0,
        reconnect_min_s: float = 0.5,
        reconnect_max_s: float = 30.0,
    ) -> None:
        self._url = database_url
        self._pool = pool
        self._batch_max = batch_max
        self._health_check_s = health_check_s
        self._reconnect_min_s = reconnect_min_s
        self._reconnect_max_s = reconnect_max_s
        # Full: the reader stops reading the socket and PostgreSQL holds the backlog.
        self._queue: asyncio.Queue[psycopg.Notify] = asyncio.Queue(max_queued)
        self._conn: AsyncConnection[Any] | None = None
        self._reader: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()
        self.reconnects = 0

    async def __aenter__(self) -> AlertListener:
        self._conn = await self._listen()  # the first connection fails loudly
        self._reader = asyncio.create_task(self._read_loop(), name="alert-listener")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._close()

    async def _listen(self) -> AsyncConnection[Any]:
        conn = await AsyncConnection.connect(
            self._url, autocommit=True, application_name="sanitrack-alert-listener"
        )
        await conn.execute(f"LISTEN {CHANNEL}")
        await conn.execute(f"LISTEN {VISITS_CHANNEL}")
        self.listening.set()
        return conn

    async def _close(self) -> None:
        self.listening.clear()
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.close()

    async def _read_loop(self) -> None:
        delay_s = self._reconnect_min_s
        while True:
            try:
                conn = self._conn
                if conn is None:
                    conn = self._conn = await self._listen()
                    self.reconnects += 1
                    log.warning("alert listener listening again; changes meanwhile were lost")
                delay_s = self._reconnect_min_s
                while True:
                    async for notification in conn.notifies(timeout=self._health_check_s):
                        await self._queue.put(notification)
                    await conn.execute("SELECT 1")  # a silent network drop shows here
            except psycopg.OperationalError as exc:
                log.warning(
                    "alert listener lost its connection (%s); retrying in %.1f s", exc, delay_s
                )
            await self._close()
            await asyncio.sleep(delay_s * random.uniform(0.5, 1.5))
            delay_s = min(delay_s * 2, self._reconnect_max_s)

    async def events(self) -> AsyncIterator[BusItem]:
        """Committed alert changes (as AlertEvent) and stop visits, in the order announced.

        An alert is read back after the announcement, so two quick changes may both show
        its later state.
        """
        while True:
            batch = [await self._next()]
            while len(batch) < self._batch_max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            parsed = [p for p in map(_parse, batch) if p is not None]
            delay_s = self._reconnect_min_s
            while True:
                try:
                    items = await self._read_back(parsed)
                    break
                except psycopg.OperationalError as exc:
                    log.warning("alert listener cannot read back (%s); retrying", exc)
                    await asyncio.sleep(delay_s * random.uniform(0.5, 1.5))
                    delay_s = min(delay_s * 2, self._reconnect_max_s)
            for item in items:
                yield item

    async def _next(self) -> psycopg.Notify:
        if not self._queue.empty():
            return self._queue.get_nowait()
        if self._reader is None:
            raise AlertsError("use the listener inside `async with`")
        waiting = asyncio.ensure_future(self._queue.get())
        try:
            await asyncio.wait((waiting, self._reader), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not waiting.done():
                waiting.cancel()
        if waiting.done() and not waiting.cancelled():
            return waiting.result()
        # The reader died: say why instead of waiting for ever.
        error = None if self._reader.cancelled() else self._reader.exception()
        raise AlertsError("the alert listener stopped") from error

    async def _read_back(self, parsed: list[_Announced]) -> list[BusItem]:
        alert_ids = [a.alert_id for a in parsed if isinstance(a, _AlertAnnounced)]
        visit_keys = [a.key for a in parsed if isinstance(a, _VisitAnnounced)]
        async with self._pool.connection() as conn:
            alerts = await alerts_by_id(conn, alert_ids)
            visits = iter(await find_visits(conn, visit_keys))
        items: list[BusItem] = []
        next_visit = next(visits, None)
        for announced in parsed:
            if isinstance(announced, _AlertAnnounced):
                alert = alerts.get(announced.alert_id)
                if alert is not None and alert.tenant_id == announced.tenant_id:
                    items.append(AlertEvent(announced.change, alert))
            elif next_visit is not None and _visit_key(next_visit) == announced.key:
                items.append(next_visit)
                next_visit = next(visits, None)
        return items


@dataclass(frozen=True, slots=True)
class _AlertAnnounced:
    alert_id: int
    tenant_id: int
    change: Change


@dataclass(frozen=True, slots=True)
class _VisitAnnounced:
    key: tuple[int, int, int, dt.datetime]


_Announced = _AlertAnnounced | _VisitAnnounced


def _parse(notification: psycopg.Notify) -> _Announced | None:
    try:
        p = orjson.loads(notification.payload)
        if notification.channel == CHANNEL:
            return _AlertAnnounced(int(p["id"]), int(p["tenant_id"]), Change(p["change"]))
        arrival_at = dt.datetime.fromisoformat(p["arrival_at"])
        return _VisitAnnounced(
            (int(p["tenant_id"]), int(p["route_run_id"]), int(p["stop_seq"]), arrival_at)
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        log.warning(
            "ignored a malformed %s payload (%s): %.200r",
            notification.channel,
            exc,
            notification.payload,
        )
        return None


def _visit_key(visit: StopVisit) -> tuple[int, int, int, dt.datetime]:
    return (visit.tenant_id, visit.route_run_id, visit.stop_seq, visit.arrival_at)


class Subscription:
    """One subscriber's bounded queue; iterate it with ``async for``.

    The iteration ends when the subscription is closed, and raises Overflowed when the
    subscriber fell ``max_queued`` items behind: it was dropped, and should start again from
    a snapshot.
    """

    def __init__(self, bus: LocalBus, max_queued: int) -> None:
        self._bus = bus
        self._queue: asyncio.Queue[BusItem | None] = asyncio.Queue(max_queued)
        self.max_queued = max_queued
        self.overflowed = False
        self.closed = False

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> BusItem:
        item = await self._queue.get() if not self.closed else None
        if item is None:
            if self.overflowed:
                raise Overflowed(self.max_queued)
            raise StopAsyncIteration
        return item

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def offer(self, item: BusItem) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True
            self.close()

    def close(self) -> None:
        """Stop the subscription; a reader waiting on it wakes up and stops."""
        if self.closed:
            return
        self.closed = True
        self._bus.unsubscribe(self)
        while not self._queue.empty():  # room for the wake-up; the rest is not wanted now
            self._queue.get_nowait()
        self._queue.put_nowait(None)


class LocalBus:
    """In-process fan-out: ``publish`` never blocks; a subscriber too slow is dropped."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()

    def subscribe(self, max_queued: int) -> Subscription:
        if max_queued < 1:
            raise InvalidValue(f"max_queued: {max_queued} is not >= 1")
        subscription = Subscription(self, max_queued)
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    def publish(self, item: BusItem) -> None:
        for subscription in list(self._subscriptions):
            subscription.offer(item)
            if subscription.overflowed:
                log.warning("dropped a bus subscriber %d items behind", subscription.max_queued)


async def pump(listener: AlertListener, bus: LocalBus) -> None:
    """Feed what the listener hears into the in-process bus, until cancelled."""
    async for item in listener.events():
        bus.publish(item)
