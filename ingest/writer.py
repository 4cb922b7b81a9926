"""The batch writer: positions, device events and dead letters, bounded by rows and by time.

Items are buffered until ``batch_max_rows`` are waiting or the oldest has
waited ``batch_max_delay_ms``, then written in one transaction. When the
database is down or slow the batch is retried with back-off and nothing is
acknowledged; the buffer keeps growing only until the ingest service stops
reading (its pending-message bound), so the broker holds the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

from ingest.acks import AckTracker, Delivery
from ingest.fix import DeviceEvent, Fix
from ingest.metrics import IngestMetrics
from sanitrack.clock import Clock
from sanitrack.settings import IngestSettings, PositionsSettings
from storage import (
    DeadLetter,
    Pool,
    PositionRow,
    is_missing_partition,
    maintain,
    write_dead_letters,
    write_positions,
)
from storage.device_events import DeviceEventRow, write_device_events

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Batch:
    rows: list[PositionRow] = field(default_factory=list)
    row_deliveries: list[Delivery] = field(default_factory=list)
    events: list[DeviceEventRow] = field(default_factory=list)
    event_deliveries: list[Delivery] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)
    letter_deliveries: list[Delivery] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows) + len(self.events) + len(self.letters)


class BatchWriter:
    def __init__(
        self,
        pool: Pool,
        acks: AckTracker,
        settings: IngestSettings,
        positions: PositionsSettings,
        metrics: IngestMetrics,
        clock: Clock,
    ) -> None:
        self._pool = pool
        self._acks = acks
        self._settings = settings
        self._positions = positions
        self._metrics = metrics
        self._clock = clock
        self._batch = _Batch()
        self._first_at: float | None = None
        self._has_items = asyncio.Event()
        self._full = asyncio.Event()
        self.committed_batches = 0
        self.last_error: str | None = None
        self._stored_callback: Callable[[], None] | None = None

    def __len__(self) -> int:
        return len(self._batch)

    def on_stored(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after each committed batch (to resume paused reading)."""
        self._stored_callback = callback

    def add_position(self, row: PositionRow, delivery: Delivery) -> None:
        delivery.remaining += 1
        self._batch.rows.append(row)
        self._batch.row_deliveries.append(delivery)
        self._added()

    def add_event(self, row: DeviceEventRow, delivery: Delivery) -> None:
        delivery.remaining += 1
        self._batch.events.append(row)
        self._batch.event_deliveries.append(delivery)
        self._added()

    def add_dead_letter(self, letter: DeadLetter, delivery: Delivery) -> None:
        delivery.remaining += 1
        self._batch.letters.append(letter)
        self._batch.letter_deliveries.append(delivery)
        self._added()

    def _added(self) -> None:
        if self._first_at is None:
            self._first_at = self._clock.monotonic()
            self._has_items.set()
        if len(self._batch) >= self._settings.batch_max_rows:
            self._full.set()

    async def run(self) -> None:
        """Flush forever; cancel to stop (call flush_all first for a clean stop)."""
        delay_s = self._settings.batch_max_delay_ms / 1000
        while True:
            await self._has_items.wait()
            assert self._first_at is not None
            wait_s = self._first_at + delay_s - self._clock.monotonic()
            if wait_s > 0 and not self._full.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), timeout=wait_s)
            await self._flush_once()

    async def flush_all(self) -> None:
        while len(self._batch):
            await self._flush_once()

    async def _flush_once(self) -> None:
        batch, self._batch = self._batch, _Batch()
        self._first_at = None
        self._has_items.clear()
        self._full.clear()
        self._metrics.buffered_rows.set(0)
        if len(batch):
            await self._write_until_stored(batch)

    async def _write_until_stored(self, batch: _Batch) -> None:
        backoff_ms = float(self._settings.retry_initial_ms)
        partitions_tried = False
        while True:
            started = time.perf_counter()
            try:
                inserted, events_inserted = await self._write(batch)
            except (psycopg.Error, OSError) as exc:
                self._metrics.write_errors.inc()
                self.last_error = str(exc)[:300]
                if is_missing_partition(exc) and not partitions_tried:
                    partitions_tried = True
                    log.warning("no partition for a fix; creating partitions")
                    await self._create_partitions()
                    continue
                if isinstance(exc, psycopg.DataError | psycopg.IntegrityError):
                    # Not transient: retrying the same batch would block ingest for good.
                    if batch.rows or batch.events:
                        log.error("database refused a batch; storing it row by row: %s", exc)
                        batch = await self._isolate_refused_rows(batch)
                    else:  # only dead letters left and PostgreSQL refuses them: say so loudly
                        for letter in batch.letters:
                            log.error(
                                "dead letter refused by the database, logged here instead",
                                extra={
                                    "topic": letter.topic,
                                    "reason": letter.reason,
                                    "payload": letter.payload[:2000],
                                },
                            )
                        batch.letters.clear()
                    continue
                log.warning("database write failed, retrying in %.0f ms: %s", backoff_ms, exc)
                await asyncio.sleep(backoff_ms / 1000 * random.uniform(0.8, 1.2))
                backoff_ms = min(backoff_ms * 2, self._settings.retry_max_ms)
                continue
            self._metrics.flush_seconds.observe(time.perf_counter() - started)
            self._metrics.batch_rows.observe(len(batch))
            self._metrics.rows_written.inc(inserted)
            self._metrics.events_written.inc(events_inserted)
            self._metrics.dead_letters_written.inc(len(batch.letters))
            self._metrics.duplicates.inc(len(batch.rows) - inserted)
            self._metrics.duplicates.inc(len(batch.events) - events_inserted)
            self.committed_batches += 1
            self.last_error = None
            before = self._acks.acked
            self._acks.stored(batch.row_deliveries)
            self._acks.stored(batch.event_deliveries)
            self._acks.stored(batch.letter_deliveries)
            self._metrics.messages_acked.inc(self._acks.acked - before)
            self._metrics.pending_messages.set(len(self._acks))
            if self._stored_callback is not None:
                self._stored_callback()
            return

    async def _write(self, batch: _Batch) -> tuple[int, int]:
        """Write the batch in one transaction; the new positions and new events."""
        async with self._pool.connection() as conn, conn.transaction():
            inserted = await write_positions(conn, batch.rows)
            events_inserted = await write_device_events(conn, batch.events)
            await write_dead_letters(conn, batch.letters)
        return inserted, events_inserted

    async def _isolate_refused_rows(self, batch: _Batch) -> _Batch:
        """Write each position and event alone; return a batch of what is left (refusals
        as dead letters)."""
        left = _Batch(letters=batch.letters, letter_deliveries=batch.letter_deliveries)
        items: list[tuple[PositionRow | DeviceEventRow, Delivery]] = [
            *zip(batch.rows, batch.row_deliveries, strict=True),
            *zip(batch.events, batch.event_deliveries, strict=True),
        ]
        for index, (item, delivery) in enumerate(items):
            try:
                async with self._pool.connection() as conn, conn.transaction():
                    if isinstance(item, DeviceEventRow):
                        self._metrics.events_written.inc(await write_device_events(conn, [item]))
                    else:
                        self._metrics.rows_written.inc(await write_positions(conn, [item]))
            except (psycopg.DataError, psycopg.IntegrityError) as exc:
                left.letters.append(self._refused(item, exc))
                left.letter_deliveries.append(delivery)
                continue
            except (psycopg.Error, OSError):  # transient: the caller retries what is left
                for rest, rest_delivery in items[index:]:
                    if isinstance(rest, DeviceEventRow):
                        left.events.append(rest)
                        left.event_deliveries.append(rest_delivery)
                    else:
                        left.rows.append(rest)
                        left.row_deliveries.append(rest_delivery)
                return left
            self._acks.stored([delivery])
        return left

    def _refused(self, item: PositionRow | DeviceEventRow, exc: Exception) -> DeadLetter:
        if isinstance(item, DeviceEventRow):
            topic, tenant_id, device_id = "(stored event)", item.tenant_id, item.device_id
        else:
            topic, tenant_id, device_id = "(stored fix)", item[2], item[0]
        return DeadLetter(
            received_at=self._clock.now(),
            topic=topic,
            payload=repr(item).encode(),
            reason="storage_refused",
            detail=str(exc)[:500],
            tenant_id=tenant_id,
            device_id=device_id,
        )

    async def _create_partitions(self) -> None:
        try:
            async with self._pool.connection() as conn:
                await maintain(conn, self._positions, self._clock.now())
        except psycopg.Error as exc:
            log.warning("partition maintenance failed: %s", exc)
            await asyncio.sleep(self._settings.retry_initial_ms / 1000)


def position_row(device_id: int, tenant_id: int, fix: Fix, received_at: dt.datetime) -> PositionRow:
    """A fix as a row of ``positions`` (storage.POSITION_COLUMNS order)."""
    return (
        device_id,
        fix.time,
        tenant_id,
        received_at,
        fix.lat,
        fix.lon,
        fix.speed_kmh,
        fix.heading_deg,
        fix.accuracy_m,
        fix.alt_m,
        fix.sats,
        fix.seq,
        fix.ignition,
        fix.battery_pct,
        fix.odometer_m,
        str(fix.source),
    )


def event_row(event: DeviceEvent) -> DeviceEventRow:
    """An event as a row of ``device_events``; what has no column of its own goes in details."""
    details: dict[str, object] = {}
    if event.route_run_id is not None:
        details["route_run_id"] = event.route_run_id
    if event.stop_seq is not None:
        details["stop_seq"] = event.stop_seq
    if event.note is not None:
        details["note"] = event.note
    return DeviceEventRow(
        tenant_id=event.tenant_id,
        device_id=event.device_id,
        time=event.time,
        received_at=event.received_at,
        kind=str(event.kind),
        lat=event.lat,
        lon=event.lon,
        value=event.value,
        details=details,
    )
