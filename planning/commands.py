"""New routes to the trucks: a command on each truck device's ``cmd`` topic (QoS 1).

Commands are written to ``route_commands`` in the transaction that makes the runs (an
outbox: a plan never exists without its commands, and a broker outage loses none), and
``send_route_commands`` publishes what is unsent, from the process that holds the MQTT
connection; ``route_command_loop`` does so every second, reconnecting with jittered back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiomqtt
import orjson
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from planning.dataset import LOCAL_ZONE
from planning.models import RouteRun
from sanitrack.clock import Clock

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes], Awaitable[None]]


def route_payload(run: RouteRun, replaces_run_id: int | None) -> dict[str, Any]:
    """What a truck's tablet needs to drive the run: its stops in order and the path."""
    return {
        "type": "route",
        "route_run_id": run.id,
        "replaces_run_id": replaces_run_id,
        "name": run.name,
        "local_date": run.local_date.isoformat(),
        "planned_start": run.planned_start.isoformat(),
        "planned_end": run.planned_end.isoformat(),
        "stops": [
            {
                "seq": stop.seq,
                "kind": str(stop.kind),
                "service_point_id": stop.service_point_id,
                "lat": stop.lat,
                "lon": stop.lon,
                "planned_arrival": stop.planned_arrival.isoformat(),
            }
            for stop in run.stops
        ],
        "path": [list(p) for p in run.expected_path],
    }


async def queue_route_commands(
    conn: AsyncConnection[Any],
    tenant_slug: str,
    runs: Sequence[tuple[RouteRun, int | None]],
    devices: dict[int, list[tuple[int, str]]],
) -> int:
    """One command per (run, truck device of its vehicle); ``devices``: vehicle id ->
    [(device id, device slug)]. How many were queued."""
    rows = [
        (
            run.tenant_id,
            run.id,
            device_id,
            f"sanitrack/{tenant_slug}/dev/{slug}/cmd",
            Jsonb(route_payload(run, replaces)),
        )
        for run, replaces in runs
        for device_id, slug in devices.get(run.vehicle_id, [])
    ]
    async with conn.cursor() as cursor:
        await cursor.executemany(
            "INSERT INTO route_commands (tenant_id, route_run_id, device_id, topic, payload)"
            " VALUES (%s, %s, %s, %s, %s)",
            rows,
        )
    return len(rows)


async def send_route_commands(
    conn: AsyncConnection[Any], publish: Publish, now: dt.datetime, limit: int = 100
) -> int:
    """Publish unsent commands, oldest first, of runs still to drive (planned or under way,
    for the local today or tomorrow of ``now``: yesterday's routes are no use to a truck);
    marked sent, or the error kept, in one transaction. How many were sent."""
    sent = 0
    failure: aiomqtt.MqttError | None = None
    today = now.astimezone(LOCAL_ZONE).date()
    async with conn.transaction():
        cursor = await conn.execute(
            "SELECT c.id, c.topic, c.payload FROM route_commands c"
            " JOIN route_runs r ON r.id = c.route_run_id"
            " WHERE c.sent_at IS NULL AND r.status IN ('planned', 'active')"
            " AND r.local_date BETWEEN %s AND %s"
            " ORDER BY c.id LIMIT %s FOR UPDATE OF c SKIP LOCKED",
            (today, today + dt.timedelta(days=1), limit),
        )
        for command_id, topic, payload in await cursor.fetchall():
            try:
                await publish(topic, orjson.dumps(payload))
            except aiomqtt.MqttError as exc:
                failure = exc
                await conn.execute(
                    "UPDATE route_commands SET error = %s WHERE id = %s",
                    (str(exc)[:500], command_id),
                )
                break
            await conn.execute(
                "UPDATE route_commands SET sent_at = now(), error = '' WHERE id = %s",
                (command_id,),
            )
            sent += 1
    if failure is not None:  # kept the error and what was sent; the caller reconnects
        raise failure
    return sent


async def route_command_loop(
    pool: AsyncConnectionPool[Any],
    connect: Callable[[], contextlib.AbstractAsyncContextManager[aiomqtt.Client]],
    clock: Clock,
    interval_s: float = 1.0,
    start_after_s: float = 5.0,
) -> None:
    """Send queued route commands until cancelled; ``connect`` opens the MQTT client. It
    starts ``start_after_s`` late: a restarted ingest first catches up on its devices."""
    await asyncio.sleep(start_after_s)
    delay_s = 1.0
    while True:
        try:
            async with connect() as client:
                delay_s = 1.0

                async def publish(topic: str, payload: bytes) -> None:
                    await client.publish(topic, payload, qos=1)

                while True:
                    async with pool.connection() as conn:
                        await send_route_commands(conn, publish, clock.now())
                    await asyncio.sleep(interval_s)
        except aiomqtt.MqttError as exc:
            log.warning("route commands: broker unreachable, retrying", extra={"error": str(exc)})
            await asyncio.sleep(delay_s * random.uniform(0.5, 1.5))
            delay_s = min(delay_s * 2, 30.0)
