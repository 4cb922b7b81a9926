"""Positions between processes: the ingest announces them, a separate API process's live
feed hears them (ARCHITECTURE §4: across processes over LISTEN/NOTIFY).

Every ``interval_s`` the notifier sends the latest fix of each device that moved as
compact rows (``[device_id, vehicle_id, t_ms, lat, lon, speed_kmh, heading_deg]``),
``{"t": tenant_id, "r": [row, ...]}``, split so that no payload passes PostgreSQL's 8,000
bytes. Positions are state, not events: a payload lost while the listener reconnects is
made good by the next fix of each device, so nothing is read back or replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
from collections.abc import Callable
from typing import Any

import orjson
import psycopg
from psycopg import AsyncConnection

from ingest.fix import DeviceFix, DeviceItem
from storage import Pool

log = logging.getLogger(__name__)

CHANNEL = "sanitrack_positions"
MAX_PAYLOAD_BYTES = 7900  # PostgreSQL's limit is 8,000 bytes

Row = list[Any]  # [device_id, vehicle_id, t_ms, lat, lon, speed_kmh, heading_deg]


def payloads(tenant_id: int, rows: list[bytes]) -> list[str]:
    """``rows`` (each an encoded row) in as few payloads of at most MAX_PAYLOAD_BYTES."""
    head = b'{"t":%d,"r":[' % tenant_id
    found: list[str] = []
    chunk: list[bytes] = []
    size = len(head) + 2
    for row in rows:
        if chunk and size + len(row) + 1 > MAX_PAYLOAD_BYTES:
            found.append((head + b",".join(chunk) + b"]}").decode())
            chunk, size = [], len(head) + 2
        chunk.append(row)
        size += len(row) + 1
    if chunk:
        found.append((head + b",".join(chunk) + b"]}").decode())
    return found


class PositionNotifier:
    """An ingest consumer: keeps the latest fix of each device and announces them."""

    def __init__(
        self, pool: Pool, vehicle_of: Callable[[int], int | None], interval_s: float = 0.1
    ) -> None:
        self._pool = pool
        self._vehicle_of = vehicle_of
        self._interval_s = interval_s
        self._pending: dict[int, tuple[int, bytes, dt.datetime]] = {}
        self.sent_payloads = 0

    def consume(self, item: DeviceItem) -> None:
        if not isinstance(item, DeviceFix) or item.jump or item.late:
            return
        fix = item.fix
        known = self._pending.get(item.device_id)
        if known is not None and known[2] >= fix.time:
            return
        row = orjson.dumps(
            [
                item.device_id,
                self._vehicle_of(item.device_id),
                round(fix.time.timestamp() * 1000),
                fix.lat,
                fix.lon,
                fix.speed_kmh,
                fix.heading_deg,
            ]
        )
        self._pending[item.device_id] = (item.tenant_id, row, fix.time)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            if self._pending:
                await self.flush()

    async def flush(self) -> None:
        pending, self._pending = self._pending, {}
        by_tenant: dict[int, list[bytes]] = {}
        for tenant_id, row, _ in pending.values():
            by_tenant.setdefault(tenant_id, []).append(row)
        texts = [text for tenant, rows in by_tenant.items() for text in payloads(tenant, rows)]
        try:
            async with self._pool.connection() as conn, conn.cursor() as cursor:
                await cursor.executemany(
                    "SELECT pg_notify(%s, %s)", [(CHANNEL, text) for text in texts]
                )
            self.sent_payloads += len(texts)
        except psycopg.Error as exc:
            # The next fixes make good what is lost; the ingest itself must go on.
            log.warning("could not announce %d positions: %s", len(pending), exc)


class PositionListener:
    """LISTENs on its own connection and hands each announced row to ``deliver``."""

    def __init__(
        self,
        database_url: str,
        deliver: Callable[[int, Row], None],
        *,
        reconnect_min_s: float = 0.5,
        reconnect_max_s: float = 30.0,
        health_check_s: float = 30.0,
    ) -> None:
        self._url = database_url
        self._deliver = deliver
        self._reconnect_min_s = reconnect_min_s
        self._reconnect_max_s = reconnect_max_s
        self._health_check_s = health_check_s
        self.listening = asyncio.Event()
        self.reconnects = 0

    async def run(self) -> None:
        delay_s = self._reconnect_min_s
        while True:
            conn: AsyncConnection[Any] | None = None
            try:
                conn = await AsyncConnection.connect(
                    self._url, autocommit=True, application_name="sanitrack-position-listener"
                )
                await conn.execute(f"LISTEN {CHANNEL}")
                self.listening.set()
                delay_s = self._reconnect_min_s
                while True:
                    async for notification in conn.notifies(timeout=self._health_check_s):
                        self._handle(notification.payload)
                    await conn.execute("SELECT 1")  # a silent network drop shows here
            except psycopg.OperationalError as exc:
                log.warning("position listener lost its connection (%s); retrying", exc)
            finally:
                self.listening.clear()
                if conn is not None:
                    with contextlib.suppress(psycopg.Error):
                        await conn.close()
            self.reconnects += 1
            await asyncio.sleep(delay_s * random.uniform(0.5, 1.5))
            delay_s = min(delay_s * 2, self._reconnect_max_s)

    def _handle(self, payload: str) -> None:
        try:
            message = orjson.loads(payload)
            tenant_id = int(message["t"])
            rows = list(message["r"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            log.warning("ignored a malformed positions payload (%s): %.200r", exc, payload)
            return
        for row in rows:
            try:
                self._deliver(tenant_id, row)
            except (TypeError, ValueError, IndexError) as exc:
                # One bad row costs only itself.
                log.warning("ignored a malformed position row (%s): %.200r", exc, row)
