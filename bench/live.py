"""The live map under load: /ws/live fan-out to many dispatchers' maps while 1,000 vehicles
report every second, and the REST reads the map makes.

Run from the repository root (it prints figures; it is not a pass/fail test):

    .venv/bin/python -m bench.live [--clients 100,1000,2000] [--step-s 30] [--quick]
                                   [--out results.json]

Every part runs in its own process, as in production:

* PostgreSQL on 127.0.0.1:5432: a fresh database ``sanitrack_bench_<random>``, migrated,
  dropped at the end. One tenant holds everything below, loaded before the ingest starts
  (the live feed seeds its latest positions from the database when it starts):
  --vehicles vehicles with a device each (the publishers); parked devices with one
  stored fix each, so that --stored-devices devices (publishers included) are on the map;
  a vehicle with yesterday's whole local day at 5 s (17,280 fixes); a vehicle with a route
  run of 300 stops yesterday and 8,000 fixes along it; a dispatcher with an API token.
* The broker: the machine's Mosquitto on 127.0.0.1:1883 when reachable, else the embedded
  amqtt broker in a process of its own (bench.ingest).
* The system under test, ``--topology separate`` (the default, as in production):
  ``python -m sanitrack.cli ingest`` (bench.ingest.ingest_process: ingest and rules
  engine) announcing positions over NOTIFY (SANITRACK_API__NOTIFY_POSITIONS=true), and
  ``python -m sanitrack.cli api`` serving the HTTP API and /ws/live in a process of its
  own; ``--topology one-process``: the ingest serves the map itself, as in the demo.
  Positions frames every 100 ms (SANITRACK_API__LIVE_POSITIONS_INTERVAL_MS).
* The publisher: one process, paced by bench.ingest's token bucket, QoS 1, one fix per
  vehicle per second in turn (bench.ingest.fix_payload: ``ts`` is the instant the message
  was handed to paho). It publishes through a few connections, each carrying many
  vehicles' topics as a telematics gateway would (anonymous on Mosquitto, the service
  account on the embedded broker, whose ACL keeps devices to their own topics): one paho
  connection per vehicle (bench.ingest.publish_worker) costs a whole core per 500
  connections here, which this 2-core machine would take from the server.
* The clients: two worker processes (asyncio, ``websockets``, no compression, orjson),
  each holding half of the clients. A client connects to /ws/live?token=..., subscribes to
  positions, waits for its snapshot and then reads every frame and parses it.

Steps. The clients grow to each N of --clients in turn (connections paced at
--connect-per-s; the clients of a step stay for the next), then a warm-up, then
--step-s measured. Before the first step: the REST timings, then --idle-s with no client
(the server's baseline CPU and RSS).

What each figure means:

* latency: receive time - ``t_ms`` (the fix's own time = the instant the publisher handed
  it to paho; one machine, one clock): publish -> broker -> ingest -> live feed tick ->
  client. ``all rows``: every row of every frame of the sampled clients (the first 20
  clients of each worker); ``oldest row``: the oldest row of every frame of every client.
  Timing every row of every client would cost the clients more CPU than the parsing.
  A frame waits up to 100 ms for its tick by design, so p50 ~ 50 ms is the floor.
* frames/s, rows/s, KB/s: per client, mean over the clients connected when the step began.
  1,000 vehicles at 1 Hz are ~1,000 rows/s in ~10 frames/s when the server keeps up; a
  client served late gets fewer, bigger frames (positions coalesce per device).
* connect: from opening the socket to the snapshot parsed; failed: refused, timed out or
  no snapshot within 60 s; dropped: closed during the step (ramp, warm-up or measure),
  by close code (4408: too slow); held: connected through the whole measured window with
  no gap between positions frames longer than 5 s.
* server CPU (100 % = one core; the process is bound to about one by the GIL) and peak
  RSS over the measured window; RSS/client = (RSS with N - RSS with none) / N, so it
  also carries what the snapshots of the ramp left allocated.
* clients CPU: each worker's mean CPU. A worker near 100 % was the limit, not the server.
  others: machine CPU that none of the measured processes used (another workload on this
  machine); when it is high, the step's figures are disturbed.
* latency timeline: the oldest row received in each second of the window, all clients:
  a stall of the server shows as a run of seconds at hundreds of ms or more. behind: the
  median of the last 5 s of it, and how much it grew from the window's 5th-9th s to then
  (> 0: the clients fall further behind, whatever "held" says).
* where a backlog waits, at the end of the window: ingest behind = fixes the publisher
  sent - MQTT messages the ingest has read (sanitrack_ingest_messages_received; they wait
  in Mosquitto, the socket or the MQTT client, before the live feed sees them), and the
  ingest's read but unacknowledged messages (pending); kernel queues = bytes the kernel
  holds on the feed's TCP connections (/proc/net/tcp): the server's send queues plus the
  clients' unread receive queues, per client. The server coalesces positions only for
  what it has not written yet, and closes (4408) only on what waits in it.

fixes lost: the publishing vehicles' fixes the broker acknowledged (QoS 1) that never got
stored, counted in positions after the clients and the publisher stopped and the ingest
drained. Mosquitto's default max_queued_messages (1000) drops, silently, what comes once
the ingest is about 21,000 messages behind (bench/ingest.py says more).

Targets of the issue: p99 <= 200 ms (all rows) with 1,000 clients; 2,000 clients held;
REST p99: positions/latest <= 50 ms, track <= 100 ms, compliance <= 200 ms (sequential
calls with the publishers running and no live client).

With py-spy next to the interpreter or on PATH, the server is profiled for --profile-s
with the largest step's clients still connected (raw stacks kept with --out).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import ctypes
import dataclasses
import datetime as dt
import json
import math
import multiprocessing.process
import multiprocessing.queues
import multiprocessing.synchronize
import operator
import os
import queue
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from array import array
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import paho.mqtt.client as paho
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

import accounts
import customers
import fleet
import planning
import reports
from bench.alerts import fetch_metrics
from bench.children import SPAWN, child, die_with_parent
from bench.ingest import (
    REPO,
    Endpoint,
    IngestProcess,
    Latency,
    Profile,
    PublishReport,
    ResourceSampler,
    TokenBucket,
    Usage,
    bench_database,
    embedded_broker_process,
    fix_payload,
    ingest_process,
    mosquitto,
    mosquitto_reachable,
    open_for_writing,
    print_profile,
    profile_of,
    py_spy,
    start_py_spy,
    stop_process,
    warn_about_neighbours,
    work_directory,
)
from broker import free_port
from geo import LocalProjection
from storage import PositionRow, count_positions, write_positions

CLIENT_WORKERS = 2
SAMPLED_PER_WORKER = 20
CONNECT_IN_FLIGHT = 8  # per worker: connections waiting for their snapshot
SNAPSHOT_TIMEOUT_S = 60.0
HELD_GAP_S = 5.0
PUBLISHER_CONNECTIONS = 4
FRAME_INTERVAL_MS = 100  # the setting's default
PROGRESS_S = 5.0
ORIGIN = (20.97, 105.78)  # Hà Đông
FIX_INTERVAL_S = 5
TRACK_FIXES = 17_280  # a day at 5 s
RUN_STOPS = 300
RUN_FIXES = 8_000
STOP_SPACING_M = 100.0
CORRIDOR_M = 40.0
WRITE_CHUNK = 5_000
PASSWORD = "bench-password-1"
TARGET_P99_MS = 200.0
TARGET_CLIENTS_P99 = 1000
TARGET_CLIENTS_HELD = 2000
T_MS = operator.itemgetter(2)  # POSITION_COLUMNS: device_id, vehicle_id, t_ms, ...


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the tenant's data


@dataclass(frozen=True, slots=True)
class World:
    tenant_id: int
    tenant_slug: str
    topics: tuple[str, ...]  # the publishing vehicles' position topics
    on_map: int  # devices with a stored position when the ingest starts (+ publishers)
    track_vehicle_id: int
    day_start: dt.datetime  # yesterday's local day, [day_start, day_start + 1 day)
    run_id: int
    token: str


async def register_world(url: str, vehicles: int, stored_devices: int) -> World:
    now = dt.datetime.now(dt.UTC)
    yesterday = now.astimezone(reports.LOCAL_ZONE).date() - dt.timedelta(days=1)
    day_start = dt.datetime.combine(yesterday, dt.time(), reports.LOCAL_ZONE).astimezone(dt.UTC)
    async with await psycopg.AsyncConnection.connect(url) as conn:
        tenant = await fleet.ensure_tenant(conn, f"bench-live-{secrets.token_hex(3)}", "Bench")
        topics = await register_publishers(conn, tenant, vehicles)
        parked = max(0, stored_devices - vehicles)
        await register_parked(conn, tenant, parked, now)
        track_vehicle_id = await register_track(conn, tenant, day_start)
        run_id = await register_run(conn, tenant, yesterday, day_start)
        user = await accounts.create_user(
            conn,
            tenant.id,
            accounts.NewUser("bench", "Bench", accounts.Role.DISPATCHER, PASSWORD),
        )
        issued = await accounts.issue_token(conn, user, now, 86_400)
        await conn.commit()
    return World(
        tenant.id,
        tenant.slug,
        tuple(topics),
        parked + 2,
        track_vehicle_id,
        day_start,
        run_id,
        issued.token,
    )


async def register_publishers(
    conn: psycopg.AsyncConnection[Any], tenant: fleet.Tenant, vehicles: int
) -> list[str]:
    topics = []
    for n in range(vehicles):
        vehicle_id = await fleet.create_vehicle(conn, tenant.id, f"29C-{n:05d}", f"Xe ép rác {n}")
        created = await fleet.create_device(
            conn, tenant, f"truck-{n}", fleet.DeviceKind.TRUCK, vehicle_id=vehicle_id
        )
        topics.append(f"sanitrack/{tenant.slug}/dev/{created.device.slug}/pos")
        if (n + 1) % 500 == 0:
            await conn.commit()
            say(f"  publishing vehicles: {n + 1}/{vehicles}")
    return topics


async def register_parked(
    conn: psycopg.AsyncConnection[Any], tenant: fleet.Tenant, count: int, now: dt.datetime
) -> None:
    """Devices with one stored fix each, ten minutes ago, on a grid around the origin."""
    projection = LocalProjection(*ORIGIN)
    rows: list[PositionRow] = []
    side = max(1, math.isqrt(count))
    for n in range(count):
        created = await fleet.create_device(conn, tenant, f"parked-{n}", fleet.DeviceKind.TRUCK)
        lat, lon = projection.to_latlon(50.0 * (n % side), 50.0 * (n // side))
        at = now - dt.timedelta(minutes=10, milliseconds=n)
        rows.append(position_row(created.device.id, tenant.id, at, lat, lon, 0.0, 0.0))
        if (n + 1) % 2000 == 0:
            await conn.commit()
            say(f"  parked devices: {n + 1}/{count}")
    await write_in_chunks(conn, rows)


async def register_track(
    conn: psycopg.AsyncConnection[Any], tenant: fleet.Tenant, day_start: dt.datetime
) -> int:
    """A vehicle that drove three laps of a 3 km circle all yesterday, one fix every 5 s."""
    vehicle_id = await fleet.create_vehicle(conn, tenant.id, "29C-TRACK", "Xe cả ngày")
    created = await fleet.create_device(
        conn, tenant, "track-truck", fleet.DeviceKind.TRUCK, vehicle_id=vehicle_id
    )
    projection = LocalProjection(*ORIGIN)
    rows = []
    for n in range(TRACK_FIXES):
        angle = 2 * math.pi * 3 * n / TRACK_FIXES
        lat, lon = projection.to_latlon(3000 * math.cos(angle), 3000 * math.sin(angle))
        at = day_start + dt.timedelta(seconds=FIX_INTERVAL_S * n)
        heading = (90 - math.degrees(angle)) % 360
        rows.append(position_row(created.device.id, tenant.id, at, lat, lon, 14.0, heading))
    await write_in_chunks(conn, rows)
    say(f"  track vehicle: {TRACK_FIXES:,} fixes yesterday")
    return vehicle_id


async def register_run(
    conn: psycopg.AsyncConnection[Any],
    tenant: fleet.Tenant,
    local_date: dt.date,
    day_start: dt.datetime,
) -> int:
    """A route run of 300 stops along a straight street east, yesterday from 06:00, and
    8,000 fixes of its vehicle along it (every tenth minute-and-a-half 60 m off the street,
    outside the corridor)."""
    projection = LocalProjection(ORIGIN[0] - 0.05, ORIGIN[1])
    vehicle_id = await fleet.create_vehicle(conn, tenant.id, "29C-RUN", "Xe tuyến")
    created = await fleet.create_device(
        conn, tenant, "run-truck", fleet.DeviceKind.TRUCK, vehicle_id=vehicle_id
    )
    path_m = STOP_SPACING_M * RUN_STOPS
    codes = [f"KH-{n:03d}" for n in range(1, RUN_STOPS + 1)]
    stop_latlon = [projection.to_latlon(STOP_SPACING_M * n, 0.0) for n in range(1, RUN_STOPS + 1)]
    points = await customers.ensure_service_points(
        conn,
        tenant.id,
        [
            customers.NewServicePoint(
                code=code,
                name=f"Hộ {code}",
                kind=customers.CustomerKind.HOUSEHOLD,
                lat=lat,
                lon=lon,
            )
            for code, (lat, lon) in zip(codes, stop_latlon, strict=True)
        ],
    )
    start = day_start + dt.timedelta(hours=6)
    drive_s = RUN_FIXES * FIX_INTERVAL_S
    path = tuple(
        (lon, lat)
        for lat, lon in (
            projection.to_latlon(STOP_SPACING_M * n, 0.0) for n in range(RUN_STOPS + 1)
        )
    )
    run_id = await planning.create_route_run(
        conn,
        tenant.id,
        planning.NewRouteRun(
            vehicle_id=vehicle_id,
            local_date=local_date,
            name="Tuyến 300 điểm",
            planned_start=start,
            planned_end=start + dt.timedelta(seconds=drive_s),
            corridor_m=CORRIDOR_M,
            expected_path=path,
            path_length_m=path_m,
            source=planning.RunSource.MANUAL,
            stops=tuple(
                planning.RouteStop(
                    seq=n,
                    kind=planning.StopKind.COLLECT,
                    service_point_id=points[codes[n - 1]],
                    lat=stop_latlon[n - 1][0],
                    lon=stop_latlon[n - 1][1],
                    path_offset_m=STOP_SPACING_M * n,
                    planned_arrival=start + dt.timedelta(seconds=drive_s * n / (RUN_STOPS + 1)),
                    dwell_radius_m=30.0,
                )
                for n in range(1, RUN_STOPS + 1)
            ),
        ),
    )
    step_m = path_m / RUN_FIXES
    rows = []
    for n in range(RUN_FIXES):
        off_m = 60.0 if n % 180 >= 162 else 0.0
        lat, lon = projection.to_latlon(step_m * n, off_m)
        at = start + dt.timedelta(seconds=FIX_INTERVAL_S * n)
        rows.append(position_row(created.device.id, tenant.id, at, lat, lon, 2.7, 90.0))
    await write_in_chunks(conn, rows)
    say(f"  route run: {RUN_STOPS} stops, {RUN_FIXES:,} fixes of its vehicle")
    return run_id


def position_row(
    device_id: int,
    tenant_id: int,
    at: dt.datetime,
    lat: float,
    lon: float,
    speed_kmh: float,
    heading_deg: float,
) -> PositionRow:
    """A row in storage.POSITION_COLUMNS order."""
    return (
        device_id,
        at,
        tenant_id,
        at,
        lat,
        lon,
        speed_kmh,
        heading_deg,
        5.0,
        None,
        9,
        None,
        True,
        None,
        None,
        "native",
    )


async def write_in_chunks(conn: psycopg.AsyncConnection[Any], rows: Sequence[PositionRow]) -> None:
    for start in range(0, len(rows), WRITE_CHUNK):
        async with conn.transaction():
            await write_positions(conn, rows[start : start + WRITE_CHUNK])
    await conn.commit()


# ---------------------------------------------------------------- the publisher process


@dataclass(frozen=True, slots=True)
class FleetJob:
    host: str
    port: int
    username: str | None
    password: str | None
    topics: tuple[str, ...]
    rate_msg_s: float
    connections: int


class Gateway:
    """One paho connection publishing for many vehicles, driven by the publisher's single
    thread (publish() writes at once, loop(timeout=0) reads the PUBACKs), as
    bench.ingest.DeviceConnection is."""

    def __init__(self, job: FleetJob) -> None:
        self.acked = 0
        self.connected = False
        self.error: str | None = None
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"bench-live-pub-{secrets.token_hex(4)}",
            protocol=paho.MQTTv311,
        )
        if job.username:
            client.username_pw_set(job.username, job.password)
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_publish = self._on_publish
        client.connect(job.host, job.port, keepalive=60)
        self._client = client

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self.error = f"connection refused ({reason})"
        self.connected = True

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        self.acked += 1

    def publish(self, topic: str, payload: bytes) -> None:
        self._client.publish(topic, payload, qos=1)

    def service(self) -> None:
        self._client.loop(timeout=0)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop(timeout=0.1)


def fleet_publish_worker(
    job: FleetJob,
    sent: ctypes.c_longlong,
    stop: multiprocessing.synchronize.Event,
    results: multiprocessing.queues.Queue[PublishReport],
) -> None:
    """Process entry: one fix per vehicle in turn at the job's rate until ``stop``."""
    gateways = [Gateway(job) for _ in range(job.connections)]
    try:
        deadline_s = time.monotonic() + 15
        while not all(g.connected for g in gateways) and time.monotonic() < deadline_s:
            for gateway in gateways:
                gateway.service()
            time.sleep(0.01)
        errors = [g.error or "no CONNACK" for g in gateways if g.error or not g.connected]
        if errors:
            raise RuntimeError(errors[0])
        results.put(_publish_until_stopped(job, gateways, sent, stop))
    except Exception as exc:
        results.put(PublishReport(0, 0, 0.0, 0.0, error=repr(exc)))
    finally:
        for gateway in gateways:
            gateway.close()


def _publish_until_stopped(
    job: FleetJob,
    gateways: list[Gateway],
    sent: ctypes.c_longlong,
    stop: multiprocessing.synchronize.Event,
) -> PublishReport:
    bucket = TokenBucket(job.rate_msg_s, max(1.0, job.rate_msg_s * 0.02), time.monotonic())
    count = 0
    first_publish_s = time.time()
    while not stop.is_set():
        for _ in range(bucket.take(time.monotonic())):
            publish_us = time.time_ns() // 1000
            payload = fix_payload(publish_us, publish_us, 1)
            gateways[count % len(gateways)].publish(job.topics[count % len(job.topics)], payload)
            count += 1
        sent.value = count
        for gateway in gateways:
            gateway.service()
        time.sleep(0.001)
    last_publish_s = time.time()
    deadline_s = time.monotonic() + 10
    while sum(g.acked for g in gateways) < count and time.monotonic() < deadline_s:
        for gateway in gateways:
            gateway.service()
        time.sleep(0.001)
    return PublishReport(count, sum(g.acked for g in gateways), first_publish_s, last_publish_s)


@dataclass(slots=True)
class Publisher:
    process: multiprocessing.process.BaseProcess
    sent: ctypes.c_longlong
    stop: multiprocessing.synchronize.Event
    results: multiprocessing.queues.Queue[PublishReport]
    report: PublishReport | None = None

    def rate_since(self, count: int, since_s: float) -> float:
        return (self.sent.value - count) / max(time.monotonic() - since_s, 1e-9)


@contextlib.asynccontextmanager
async def fleet_publisher(
    endpoint: Endpoint, topics: Sequence[str], rate_msg_s: float, sampler: ResourceSampler
) -> AsyncIterator[Publisher]:
    job = FleetJob(
        endpoint.host,
        endpoint.port,
        endpoint.username,
        endpoint.password,
        tuple(topics),
        rate_msg_s,
        PUBLISHER_CONNECTIONS,
    )
    sent = SPAWN.RawValue(ctypes.c_longlong, 0)
    stop = SPAWN.Event()
    results: multiprocessing.queues.Queue[PublishReport] = SPAWN.Queue()
    process = child(fleet_publish_worker, (job, sent, stop, results), "publisher")
    process.start()
    sampler.watch("publisher", process.pid)
    publisher = Publisher(process, sent, stop, results)
    try:
        deadline_s = time.monotonic() + 30
        while sent.value == 0:
            if not process.is_alive() or time.monotonic() > deadline_s:
                publisher.report = await asyncio.to_thread(_report_of, results)
                raise RuntimeError(f"the publisher did not start: {publisher.report}")
            await asyncio.sleep(0.2)
        yield publisher
    finally:
        stop.set()
        if publisher.report is None:
            publisher.report = await asyncio.to_thread(_report_of, results)
        await asyncio.to_thread(process.join, 15)
        if process.is_alive():
            process.kill()
            process.join()


def _report_of(results: multiprocessing.queues.Queue[PublishReport]) -> PublishReport | None:
    with contextlib.suppress(queue.Empty):
        return results.get(timeout=20)
    return None


# ---------------------------------------------------------------- the client processes


@dataclass(frozen=True, slots=True)
class ClientJob:
    worker: int
    url: str
    sampled_clients: int
    connect_per_s: float


@dataclass(frozen=True, slots=True)
class GrowReport:
    worker: int
    alive: int
    failed: dict[str, int]  # reason -> new clients that never got their snapshot
    connect_s: list[float]  # new clients: socket opened -> snapshot parsed
    snapshot_positions: int
    snapshot_bytes: int


@dataclass(frozen=True, slots=True)
class WindowReport:
    worker: int
    window_s: float
    clients_at_start: int
    alive_at_end: int
    held: int
    closed: dict[str, int]  # close code -> clients closed since the previous report
    frames: int
    rows: int
    message_bytes: int
    heartbeats: int
    worst_gap_s: float
    sampled_clients: int  # of the sampled clients, those connected when the window began
    all_rows_ms: array[int]  # every row of the sampled clients
    oldest_row_ms: array[int]  # the oldest row of every frame of every client
    worst_by_second: dict[int, int]  # second of the window -> its oldest row's latency, ms


class LiveClient:
    """One dispatcher's map: subscribes to positions and reads every frame."""

    def __init__(self, fleet_: ClientFleet, sampled: bool) -> None:
        self._fleet = fleet_
        self.sampled = sampled
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.alive = False
        self.failure: str | None = None
        self.connect_s: float | None = None
        self.snapshot_positions = 0
        self.snapshot_bytes = 0
        self.frames = 0
        self.rows = 0
        self.message_bytes = 0
        self.heartbeats = 0
        self.last_frame_s = 0.0
        self.max_gap_s = 0.0
        self.task: asyncio.Task[None] | None = None

    def reset(self, now_s: float) -> None:
        self.frames = self.rows = self.message_bytes = self.heartbeats = 0
        self.last_frame_s = now_s
        self.max_gap_s = 0.0

    async def run(self, url: str) -> None:
        began_s = time.monotonic()
        try:
            async with connect(
                url,
                compression=None,
                max_size=None,  # a snapshot of 10,000 positions is ~2 MB
                ping_interval=None,  # as a browser: the server pings
                open_timeout=SNAPSHOT_TIMEOUT_S,
                close_timeout=2,
            ) as websocket:
                await websocket.send(orjson.dumps({"op": "subscribe", "channels": ["positions"]}))
                await asyncio.wait_for(self._snapshot(websocket), SNAPSHOT_TIMEOUT_S)
                self.connect_s = time.monotonic() - began_s
                self.alive = True
                self.last_frame_s = time.time()
                self.ready.set_result(None)
                while True:
                    self._on_message(await websocket.recv(decode=False))
        except ConnectionClosed as closed:
            code = str(closed.rcvd.code) if closed.rcvd else "1006 (no close frame)"
            self._ended(code)
        except InvalidStatus as refused:
            self._ended(f"HTTP {refused.response.status_code}")
        except (InvalidHandshake, OSError, TimeoutError) as exc:
            self._ended(type(exc).__name__)
        except Exception as exc:  # a bad frame: counted, the other clients go on
            self._ended(f"client error {type(exc).__name__}")
        finally:
            self.alive = False
            if not self.ready.done():
                self.ready.set_result(None)

    def _ended(self, why: str) -> None:
        if self.ready.done():
            self._fleet.closed[why] += 1
        else:
            self.failure = why

    async def _snapshot(self, websocket: ClientConnection) -> None:
        while True:
            data = await websocket.recv(decode=False)
            message = orjson.loads(data)
            if message.get("type") == "snapshot":
                self.snapshot_positions = len(message.get("positions", ()))
                self.snapshot_bytes = len(data)
                return
            if message.get("type") == "error":
                raise ConnectionError(f"subscription refused: {message}")

    def _on_message(self, data: bytes) -> None:
        received_s = time.time()
        message = orjson.loads(data)
        if message["type"] != "positions":
            self.heartbeats += message["type"] == "heartbeat"
            return
        rows = message["rows"]
        self.frames += 1
        self.rows += len(rows)
        self.message_bytes += len(data)
        self.max_gap_s = max(self.max_gap_s, received_s - self.last_frame_s)
        self.last_frame_s = received_s
        if not self._fleet.measuring or not rows:
            return
        received_ms = received_s * 1000.0
        oldest_ms = round(received_ms - min(map(T_MS, rows)))
        fleet_ = self._fleet
        fleet_.oldest_row_ms.append(oldest_ms)
        second = int(received_s - fleet_.window_start_s)
        if oldest_ms > fleet_.worst_by_second.get(second, -1):
            fleet_.worst_by_second[second] = oldest_ms
        if self.sampled:
            fleet_.all_rows_ms.extend(round(received_ms - t) for t in map(T_MS, rows))


class ClientFleet:
    """A worker's clients and the latencies they record while measuring."""

    def __init__(self, job: ClientJob) -> None:
        self.job = job
        self.clients: list[LiveClient] = []
        self.closed: collections.Counter[str] = collections.Counter()
        self.measuring = False
        self.all_rows_ms: array[int] = array("l")
        self.oldest_row_ms: array[int] = array("l")
        self.worst_by_second: dict[int, int] = {}
        self.window_start_s = 0.0
        self._at_start: list[LiveClient] = []

    async def serve(
        self,
        commands: multiprocessing.queues.Queue[tuple[str, int]],
        replies: multiprocessing.queues.Queue[GrowReport | WindowReport],
    ) -> None:
        while True:
            command, argument = await asyncio.to_thread(commands.get)
            if command == "grow":
                replies.put(await self.grow(argument))
            elif command == "measure":
                self.start_window()
            elif command == "report":
                replies.put(self.end_window())
            else:
                break
        tasks = [c.task for c in self.clients if c.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=10)

    async def grow(self, target: int) -> GrowReport:
        """Connect new clients up to ``target`` alive, paced; each waits for its snapshot."""
        in_flight = asyncio.Semaphore(CONNECT_IN_FLIGHT)
        interval_s = 1 / self.job.connect_per_s
        new: list[LiveClient] = []
        for _ in range(max(0, target - sum(c.alive for c in self.clients))):
            await in_flight.acquire()
            client = LiveClient(self, sampled=len(self.clients) < self.job.sampled_clients)
            client.ready.add_done_callback(lambda _: in_flight.release())
            client.task = asyncio.create_task(client.run(self.job.url), name="client")
            self.clients.append(client)
            new.append(client)
            await asyncio.sleep(interval_s)
        await asyncio.gather(*(c.ready for c in new))
        failed = collections.Counter(c.failure for c in new if c.failure is not None)
        last = next((c for c in reversed(new) if c.failure is None), None)
        return GrowReport(
            self.job.worker,
            sum(c.alive for c in self.clients),
            dict(failed),
            [c.connect_s for c in new if c.connect_s is not None],
            last.snapshot_positions if last else 0,
            last.snapshot_bytes if last else 0,
        )

    def start_window(self) -> None:
        self.window_start_s = time.time()
        self._at_start = [c for c in self.clients if c.alive]
        for client in self._at_start:
            client.reset(self.window_start_s)
        self.all_rows_ms = array("l")
        self.oldest_row_ms = array("l")
        self.worst_by_second = {}
        self.measuring = True

    def end_window(self) -> WindowReport:
        self.measuring = False
        end_s = time.time()
        clients = self._at_start
        gaps = [max(c.max_gap_s, end_s - c.last_frame_s) for c in clients]
        held = sum(
            1
            for c, gap in zip(clients, gaps, strict=True)
            if c.alive and c.frames and gap <= HELD_GAP_S
        )
        report = WindowReport(
            worker=self.job.worker,
            window_s=end_s - self.window_start_s,
            clients_at_start=len(clients),
            alive_at_end=sum(c.alive for c in self.clients),
            held=held,
            closed=dict(self.closed),
            frames=sum(c.frames for c in clients),
            rows=sum(c.rows for c in clients),
            message_bytes=sum(c.message_bytes for c in clients),
            heartbeats=sum(c.heartbeats for c in clients),
            worst_gap_s=max(gaps, default=0.0),
            sampled_clients=sum(c.sampled for c in clients),
            all_rows_ms=self.all_rows_ms,
            oldest_row_ms=self.oldest_row_ms,
            worst_by_second=self.worst_by_second,
        )
        self.closed.clear()
        return report


def client_worker(
    job: ClientJob,
    commands: multiprocessing.queues.Queue[tuple[str, int]],
    replies: multiprocessing.queues.Queue[GrowReport | WindowReport],
) -> None:
    """Process entry: hold live clients as the coordinator's commands say."""

    async def main() -> None:
        await ClientFleet(job).serve(commands, replies)

    asyncio.run(main())


@dataclass(slots=True)
class ClientWorkers:
    processes: Sequence[multiprocessing.process.BaseProcess]
    commands: list[multiprocessing.queues.Queue[tuple[str, int]]]
    replies: multiprocessing.queues.Queue[GrowReport | WindowReport]

    def send(self, command: str, arguments: Sequence[int] | None = None) -> None:
        for n, commands in enumerate(self.commands):
            commands.put((command, arguments[n] if arguments else 0))

    async def collect(self, waiting: str, bench: Bench) -> list[Any]:
        """One reply per worker; progress every few seconds while waiting."""
        replies: list[Any] = []
        shown_s = time.monotonic()
        while len(replies) < len(self.processes):
            with contextlib.suppress(queue.Empty):
                replies.append(await asyncio.to_thread(self.replies.get, True, 0.5))
                continue
            if any(not p.is_alive() for p in self.processes):
                raise RuntimeError("a client worker died")
            if time.monotonic() - shown_s >= PROGRESS_S:
                shown_s = time.monotonic()
                live = await live_metrics(bench.server)
                ingest = await ingest_counters(bench)
                say(
                    f"    {waiting}: server counts {live.get('sanitrack_live_clients', 0):.0f}"
                    f" clients; ingest behind {ingest.behind} msgs"
                )
        return sorted(replies, key=lambda r: int(r.worker))


@contextlib.asynccontextmanager
async def client_workers(
    url: str, connect_per_s: float, sampler: ResourceSampler
) -> AsyncIterator[ClientWorkers]:
    commands: list[multiprocessing.queues.Queue[tuple[str, int]]] = [
        SPAWN.Queue() for _ in range(CLIENT_WORKERS)
    ]
    replies: multiprocessing.queues.Queue[GrowReport | WindowReport] = SPAWN.Queue()
    processes = []
    for n in range(CLIENT_WORKERS):
        job = ClientJob(n, url, SAMPLED_PER_WORKER, connect_per_s / CLIENT_WORKERS)
        process = child(client_worker, (job, commands[n], replies), f"clients-{n}")
        process.start()
        sampler.watch(f"clients-{n}", process.pid)
        processes.append(process)
    workers = ClientWorkers(processes, commands, replies)
    try:
        yield workers
    finally:
        workers.send("stop")
        for process in processes:
            await asyncio.to_thread(process.join, 20)
            if process.is_alive():
                process.kill()
                process.join()


# ---------------------------------------------------------------- one step of clients


@dataclass(frozen=True, slots=True)
class ClientStep:
    clients: int
    connected: int  # alive when the measured window began
    failed_to_connect: int
    connect_failures: dict[str, int]
    connect_p50_s: float
    connect_max_s: float
    snapshot_positions: int
    snapshot_kb: float
    held: int
    dropped: dict[str, int]  # close code -> clients closed from the ramp to the step's end
    server_closed_too_slow: int
    window_s: float
    frames_per_client_s: float
    rows_per_client_s: float
    kb_per_client_s: float
    worst_gap_s: float
    sampled_clients: int
    all_rows: Latency | None
    rows_timed: int
    oldest_row: Latency | None
    frames_timed: int
    worst_ms_by_second: list[int]  # the oldest row of any frame in each second of the window
    behind_end_s: float  # median of the timeline's last 5 s
    behind_growth_s: float  # behind_end_s - median of the timeline's 5th to 9th s
    kernel_send_kb_per_client: float  # the server's send queues at the window's end
    kernel_receive_kb_per_client: float  # the clients' unread receive queues
    ingest_received_msg_s: float  # MQTT messages the ingest read, over the window
    ingest_behind_msg: int  # published - read by the ingest, at the window's end
    ingest_pending_msg: int  # read, not yet acknowledged (stored), at the window's end
    published_msg_s: float
    server: Usage
    rss_per_client_kb: float
    clients_cpu_percent: list[float]  # each worker
    ingest: Usage  # the same process as the server with --topology one-process
    publisher: Usage
    broker: Usage
    postgres: Usage
    bench: Usage
    machine_cpu_percent: float
    others_cpu_percent: float  # what no measured process accounts for: a neighbour's load
    limit: str


@dataclass(frozen=True, slots=True)
class Idle:
    window_s: float
    server: Usage
    published_msg_s: float


@dataclass(frozen=True, slots=True)
class Server:
    """The process that serves the live map: `sanitrack api`, or the ingest itself."""

    name: str  # its name in the resource sampler
    pid: int
    http_port: int


@contextlib.asynccontextmanager
async def api_process(
    database_url: str, work_dir: Path, extra_env: dict[str, str]
) -> AsyncIterator[Server]:
    """``sanitrack api`` in a process of its own, ready when /health says it listens."""
    http_port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SANITRACK_")},
        "SANITRACK_DATABASE_URL": database_url,
        "SANITRACK_HTTP_PORT": str(http_port),
        "SANITRACK_LOG_LEVEL": "WARNING",
        **extra_env,
    }
    log_path = work_dir / "api-live.log"
    with open_for_writing(log_path) as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sanitrack.cli",
            "api",
            env=env,
            cwd=REPO,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
    try:
        deadline_s = time.monotonic() + 60
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"sanitrack api exited early; see {log_path}")
            with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
                health = await asyncio.to_thread(_health, http_port)
                if health.get("ok"):
                    break
            if time.monotonic() > deadline_s:
                raise RuntimeError(f"sanitrack api not ready in 60 s; see {log_path}")
            await asyncio.sleep(0.3)
        say(f"sanitrack api running on port {http_port} (log {log_path})")
        yield Server("api", process.pid, http_port)
    finally:
        await stop_process(process)


def _health(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
        body: dict[str, Any] = json.loads(response.read())
    return body


@dataclass(slots=True)
class Bench:
    ingest: IngestProcess
    publisher: Publisher
    sampler: ResourceSampler
    server: Server
    workers: ClientWorkers | None = None
    idle: Idle | None = None


@dataclass(frozen=True, slots=True)
class IngestCounters:
    at_s: float  # monotonic
    received: int  # MQTT messages the ingest has read since it started
    behind: int  # fixes published - messages read
    pending: int  # read, not yet acknowledged


async def ingest_counters(bench: Bench) -> IngestCounters:
    """The ingest's read position against the publisher's (other publishers on a shared
    Mosquitto would count as read too)."""
    sent = bench.publisher.sent.value
    try:
        values = await asyncio.to_thread(bench.ingest.metrics)
    except (OSError, urllib.error.URLError):
        values = {}
    received = int(values.get("sanitrack_ingest_messages_received_total", 0))
    pending = int(values.get("sanitrack_ingest_pending_messages", 0))
    return IngestCounters(time.monotonic(), received, max(0, sent - received), pending)


async def live_metrics(server: Server) -> dict[str, float]:
    """sanitrack_live_* of the server, summed over labels but the close reason's."""
    try:
        values = await asyncio.to_thread(fetch_metrics, server.http_port, ("sanitrack_live_",))
    except (OSError, urllib.error.URLError):
        return {}
    return {name.split("{")[0] if "reason" not in name else name: v for name, v in values.items()}


async def measure_window(bench: Bench, seconds: float, label: str) -> tuple[float, float, float]:
    """Wait ``seconds`` printing a progress line every few seconds; (start, end, msg/s)."""
    start_s, began = time.time(), time.monotonic()
    sent = bench.publisher.sent.value
    while (left := seconds - (time.monotonic() - began)) > 0:
        await asyncio.sleep(min(PROGRESS_S, left))
        now_s = time.time()
        server = bench.sampler.usage(bench.server.name, now_s - PROGRESS_S, now_s)
        workers = [
            bench.sampler.usage(f"clients-{n}", now_s - PROGRESS_S, now_s).cpu_percent
            for n in range(CLIENT_WORKERS)
        ]
        live = await live_metrics(bench.server)
        machine = bench.sampler.machine_cpu(now_s - PROGRESS_S, now_s)
        queues = await asyncio.to_thread(socket_queues, bench.server.http_port)
        ingest = await ingest_counters(bench)
        say(
            f"    {label} {time.monotonic() - began:3.0f}/{seconds:.0f} s: server {server},"
            f" clients CPU {'/'.join(f'{c:.0f}%' for c in workers)},"
            f" machine {machine:.0f}%/200%,"
            f" server counts {live.get('sanitrack_live_clients', 0):.0f} clients,"
            f" published {bench.publisher.rate_since(sent, began):.0f} msg/s,"
            f" ingest behind {ingest.behind} msgs ({ingest.pending} pending),"
            f" kernel queues {(queues.server_send_bytes + queues.client_receive_bytes) / 2**20:.1f}"
            " MB"
        )
    return start_s, time.time(), bench.publisher.rate_since(sent, began)


async def idle_step(bench: Bench, seconds: float) -> Idle:
    say(f"no client: the server's baseline for {seconds:.0f} s")
    start_s, end_s, rate = await measure_window(bench, seconds, "idle")
    return Idle(end_s - start_s, bench.sampler.usage(bench.server.name, start_s, end_s), rate)


async def client_step(bench: Bench, clients: int, warm_up_s: float, step_s: float) -> ClientStep:
    workers = bench.workers
    assert workers is not None
    shares = [
        clients // CLIENT_WORKERS + (n < clients % CLIENT_WORKERS) for n in range(CLIENT_WORKERS)
    ]
    say(f"step {clients} clients: connecting ...")
    began = time.monotonic()
    closed_before = await live_metrics(bench.server)
    workers.send("grow", shares)
    grown: list[GrowReport] = await workers.collect("connecting", bench)
    connect_s = sorted(s for g in grown for s in g.connect_s)
    failed = collections.Counter[str]()
    for g in grown:
        failed.update(g.failed)
    say(
        f"  {sum(g.alive for g in grown)} connected in {time.monotonic() - began:.0f} s"
        f" ({sum(failed.values())} failed); warming up {warm_up_s:.0f} s"
    )
    await asyncio.sleep(warm_up_s)
    ingest_before = await ingest_counters(bench)
    workers.send("measure")
    start_s, end_s, published = await measure_window(bench, step_s, f"{clients} clients")
    workers.send("report")
    queues = await asyncio.to_thread(socket_queues, bench.server.http_port)
    ingest_after = await ingest_counters(bench)
    windows: list[WindowReport] = await workers.collect("reporting", bench)
    closed_after = await live_metrics(bench.server)
    too_slow = 'sanitrack_live_clients_closed_total{reason="too_slow"}'
    return summarize_step(
        bench,
        clients,
        grown,
        windows,
        connect_s,
        failed,
        (start_s, end_s),
        published,
        round(closed_after.get(too_slow, 0.0) - closed_before.get(too_slow, 0.0)),
        queues,
        (ingest_before, ingest_after),
    )


def summarize_step(
    bench: Bench,
    clients: int,
    grown: list[GrowReport],
    windows: list[WindowReport],
    connect_s: list[float],
    failed: collections.Counter[str],
    window: tuple[float, float],
    published_msg_s: float,
    server_too_slow: int,
    queues: SocketQueues,
    ingest: tuple[IngestCounters, IngestCounters],
) -> ClientStep:
    assert bench.idle is not None
    connected = sum(w.clients_at_start for w in windows)
    window_s = statistics_mean([w.window_s for w in windows])
    per_client_s = max(connected, 1) * window_s
    dropped = collections.Counter[str]()
    for w in windows:
        dropped.update(w.closed)
    server = bench.sampler.usage(bench.server.name, *window)
    workers_cpu = [
        bench.sampler.usage(f"clients-{n}", *window).cpu_percent for n in range(CLIENT_WORKERS)
    ]
    machine = bench.sampler.machine_cpu(*window)
    all_rows = array("l")
    oldest = array("l")
    for w in windows:
        all_rows.extend(w.all_rows_ms)
        oldest.extend(w.oldest_row_ms)
    snapshot = next((g for g in grown if g.snapshot_bytes), None)
    worst: dict[int, int] = {}
    for w in windows:
        for second, latency_ms in w.worst_by_second.items():
            worst[second] = max(worst.get(second, 0), latency_ms)
    groups = ("ingest", "publisher", "broker", "postgres", "bench")
    usage = {group: bench.sampler.usage(group, *window) for group in groups}
    own = [u.cpu_percent for g, u in usage.items() if g != bench.server.name]
    measured = server.cpu_percent + sum(workers_cpu) + sum(own)
    timeline = [worst.get(n, 0) for n in range(math.ceil(window_s))]
    behind_end_s = median(timeline[-6:-1]) / 1000  # the last second may be cut short
    behind_early_s = median(timeline[5:10]) / 1000
    return ClientStep(
        clients=clients,
        connected=connected,
        failed_to_connect=sum(failed.values()),
        connect_failures=dict(failed),
        connect_p50_s=percentile(connect_s, 0.5),
        connect_max_s=connect_s[-1] if connect_s else 0.0,
        snapshot_positions=snapshot.snapshot_positions if snapshot else 0,
        snapshot_kb=snapshot.snapshot_bytes / 1024 if snapshot else 0.0,
        held=sum(w.held for w in windows),
        dropped=dict(dropped),
        server_closed_too_slow=server_too_slow,
        window_s=window_s,
        frames_per_client_s=sum(w.frames for w in windows) / per_client_s,
        rows_per_client_s=sum(w.rows for w in windows) / per_client_s,
        kb_per_client_s=sum(w.message_bytes for w in windows) / 1024 / per_client_s,
        worst_gap_s=max(w.worst_gap_s for w in windows),
        sampled_clients=sum(w.sampled_clients for w in windows),
        all_rows=latency_of(all_rows),
        rows_timed=len(all_rows),
        oldest_row=latency_of(oldest),
        frames_timed=len(oldest),
        worst_ms_by_second=timeline,
        behind_end_s=behind_end_s,
        behind_growth_s=behind_end_s - behind_early_s,
        kernel_send_kb_per_client=queues.server_send_bytes / 1024 / max(connected, 1),
        kernel_receive_kb_per_client=queues.client_receive_bytes / 1024 / max(connected, 1),
        ingest_received_msg_s=(ingest[1].received - ingest[0].received)
        / max(ingest[1].at_s - ingest[0].at_s, 1e-9),
        ingest_behind_msg=ingest[1].behind,
        ingest_pending_msg=ingest[1].pending,
        published_msg_s=published_msg_s,
        server=server,
        rss_per_client_kb=(server.peak_rss_mb - bench.idle.server.peak_rss_mb) * 1024 / clients,
        clients_cpu_percent=workers_cpu,
        ingest=usage["ingest"],
        publisher=usage["publisher"],
        broker=usage["broker"],
        postgres=usage["postgres"],
        bench=usage["bench"],
        machine_cpu_percent=machine,
        others_cpu_percent=max(0.0, machine - measured),
        limit=limit_of(server.cpu_percent, workers_cpu, machine),
    )


def cpu_during(
    sampler: ResourceSampler, server: Server, start_s: float, end_s: float
) -> dict[str, float]:
    groups = {"ingest", server.name, "publisher", "broker", "postgres", "bench"}
    measured = sum(sampler.usage(group, start_s, end_s).cpu_percent for group in groups)
    machine = sampler.machine_cpu(start_s, end_s)
    return {
        "server": sampler.usage(server.name, start_s, end_s).cpu_percent,
        "ingest": sampler.usage("ingest", start_s, end_s).cpu_percent,
        "machine": machine,
        "others": max(0.0, machine - measured),
    }


def limit_of(server_cpu: float, workers_cpu: Sequence[float], machine_cpu: float) -> str:
    """What ran out: the server's one core, a client worker's, or the machine's two."""
    limits = []
    if server_cpu >= 85:
        limits.append("server CPU")
    if max(workers_cpu, default=0.0) >= 85:
        limits.append("client CPU")
    if machine_cpu >= 180:
        limits.append("machine CPU")
    return " + ".join(limits) or "none"


def percentile(ordered: Sequence[float], q: float) -> float:
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))]) if ordered else 0.0


def latency_of(values_ms: Sequence[int]) -> Latency | None:
    if not values_ms:
        return None
    ordered = sorted(values_ms)
    return Latency(percentile(ordered, 0.5), percentile(ordered, 0.99), float(ordered[-1]))


def statistics_mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def median(values: Sequence[int]) -> float:
    return percentile(sorted(values), 0.5)


@dataclass(frozen=True, slots=True)
class SocketQueues:
    server_send_bytes: int
    client_receive_bytes: int
    server_sockets: int


def socket_queues(port: int) -> SocketQueues:
    """What the kernel holds on the established TCP connections of ``port`` (IPv4, this
    machine): the server side's send queues and the client side's unread receive queues."""
    send = receive = sockets = 0
    with Path("/proc/net/tcp").open() as table:
        next(table)
        for line in table:
            fields = line.split()
            if fields[3] != "01":  # ESTABLISHED
                continue
            tx_queue, rx_queue = (int(part, 16) for part in fields[4].split(":"))
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                send += tx_queue
                sockets += 1
            elif int(fields[2].rsplit(":", 1)[1], 16) == port:
                receive += rx_queue
    return SocketQueues(send, receive, sockets)


@dataclass(frozen=True, slots=True)
class Fixes:
    """The publishing vehicles' fixes over the whole run."""

    sent: int
    acked: int  # acknowledged by the broker (QoS 1)
    stored: int  # in positions once the ingest had drained
    error: str | None

    @property
    def lost(self) -> int:
        return max(0, self.acked - self.stored)

    @classmethod
    def of(cls, report: PublishReport | None, stored: int) -> Fixes:
        if report is None:
            return cls(0, 0, stored, "no report from the publisher")
        return cls(report.sent, report.acked, stored, report.error)


async def stored_fixes(url: str, tenant_id: int, settle_s: float = 0.0) -> int:
    """The tenant's stored fixes; with ``settle_s``, once the count has not moved for that
    long (at most 60 s)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        count, steady_s = await count_positions(conn, tenant_id), time.monotonic()
        deadline_s = time.monotonic() + 60
        while settle_s and time.monotonic() - steady_s < settle_s and time.monotonic() < deadline_s:
            await asyncio.sleep(0.5)
            now_count = await count_positions(conn, tenant_id)
            if now_count != count:
                count, steady_s = now_count, time.monotonic()
    return count


# ---------------------------------------------------------------- the REST reads


@dataclass(frozen=True, slots=True)
class RestTiming:
    name: str
    path: str
    calls: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    items: int  # positions, track points or stops in the answer
    body_kb: float
    target_ms: float | None

    @property
    def verdict(self) -> str:
        if self.target_ms is None:
            return ""
        return "met" if self.p99_ms <= self.target_ms else "MISSED"


async def time_reads(port: int, world: World, calls: int, warm_ups: int) -> list[RestTiming]:
    day_end = world.day_start + dt.timedelta(days=1)
    track = f"/api/v1/vehicles/{world.track_vehicle_id}/track"
    day = {"from": utc_text(world.day_start), "to": utc_text(day_end)}
    reads: list[tuple[str, str, dict[str, str], float | None]] = [
        ("positions/latest", "/api/v1/positions/latest", {}, 50.0),
        ("track, a day, automatic bucket", track, day, 100.0),
        ("track, a day, bucket_s=30", track, day | {"bucket_s": "30"}, 100.0),
        ("track, a day, every fix (bucket_s=0)", track, day | {"bucket_s": "0"}, None),
        ("route run compliance", f"/api/v1/route-runs/{world.run_id}/compliance", {}, 200.0),
    ]
    timings = []
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {world.token}"},
        timeout=60,
    ) as client:
        for name, path, params, target_ms in reads:
            say(f"REST {name}: {warm_ups} warm-ups + {calls} calls ...")
            timings.append(await time_read(client, name, path, params, calls, warm_ups, target_ms))
            last = timings[-1]
            say(f"  p50 {last.p50_ms:.1f} ms p99 {last.p99_ms:.1f} ms, {last.items:,} items")
    return timings


async def time_read(
    client: httpx.AsyncClient,
    name: str,
    path: str,
    params: dict[str, str],
    calls: int,
    warm_ups: int,
    target_ms: float | None,
) -> RestTiming:
    durations_ms = []
    response: httpx.Response | None = None
    for n in range(warm_ups + calls):
        began = time.perf_counter()
        response = await client.get(path, params=params)
        elapsed_ms = (time.perf_counter() - began) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:300]}")
        if n >= warm_ups:
            durations_ms.append(elapsed_ms)
    assert response is not None
    durations_ms.sort()
    return RestTiming(
        name,
        path,
        calls,
        percentile(durations_ms, 0.5),
        percentile(durations_ms, 0.99),
        durations_ms[-1],
        items_in(response.json()),
        len(response.content) / 1024,
        target_ms,
    )


def items_in(body: Any) -> int:
    if isinstance(body, list):
        return len(body)
    if "points" in body:
        return len(body["points"])
    return int(body.get("stops_total", 0))


def utc_text(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------- output


def shown(latency: Latency | None) -> str:
    if latency is None:
        return f"{'no data':>17}"
    return f"{latency.p50_ms:5.0f} {latency.p99_ms:5.0f} {latency.max_ms:5.0f}"


def print_report(
    args: argparse.Namespace,
    endpoint: Endpoint,
    world: World,
    idle: Idle,
    steps: Sequence[ClientStep],
    reads: Sequence[RestTiming],
    rest_cpu: dict[str, float],
    fixes: Fixes,
) -> None:
    print(
        f"\nLIVE MAP UNDER LOAD ({endpoint.name}; {time.strftime('%Y-%m-%d %H:%M')}):"
        f" {len(world.topics):,} vehicles at 1 fix/s, QoS 1, positions frames every"
        f" {args.frame_interval_ms} ms; {world.on_map + len(world.topics):,} devices on the map"
    )
    print(f"  no client: server {idle.server}, publisher offered {idle.published_msg_s:.0f} msg/s")
    print(
        "\n  delivery per step; latency = client receive - fix time (publish instant), ms;"
        f" 'all rows' = every row of the sampled clients ({SAMPLED_PER_WORKER} per worker),"
        " 'oldest' = the oldest row of every frame of every client"
    )
    print(
        f"  {'clients':>7} {'conn':>5} {'fail':>4} {'held':>5} {'dropped':>14}"
        f" {'all rows p50 p99   max':>23} {'oldest p50 p99   max':>21}"
        f" {'frames/s':>8} {'rows/s':>6} {'KB/s':>5} {'gap s':>5} {'connect s p50/max':>17}"
    )
    for s in steps:
        dropped = ",".join(f"{code}:{n}" for code, n in sorted(s.dropped.items())) or "0"
        print(
            f"  {s.clients:>7} {s.connected:>5} {s.failed_to_connect:>4} {s.held:>5}"
            f" {dropped:>14} {shown(s.all_rows):>23} {shown(s.oldest_row):>21}"
            f" {s.frames_per_client_s:>8.1f} {s.rows_per_client_s:>6.0f}"
            f" {s.kb_per_client_s:>5.0f} {s.worst_gap_s:>5.1f}"
            f" {f'{s.connect_p50_s:.2f}/{s.connect_max_s:.2f}':>17}"
        )
    print(
        "\n  resources per step (CPU: 100 % = one core; RSS: peak in the window);"
        " 'limit': what ran at >= 85 % of its core(s)"
    )
    print(
        f"  {'clients':>7} {'server CPU':>10} {'RSS MB':>7} {'KB/client':>9}"
        f" {'clients CPU':>11} {'ingest':>6} {'publisher':>9} {'broker':>6} {'postgres':>8}"
        f" {'machine':>8} {'others':>6} {'pub msg/s':>9}  limit"
    )
    for s in steps:
        workers = "/".join(f"{c:.0f}" for c in s.clients_cpu_percent)
        print(
            f"  {s.clients:>7} {s.server.cpu_percent:>9.0f}% {s.server.peak_rss_mb:>7.0f}"
            f" {s.rss_per_client_kb:>9.0f} {workers:>10}% {s.ingest.cpu_percent:>5.0f}%"
            f" {s.publisher.cpu_percent:>8.0f}%"
            f" {s.broker.cpu_percent:>5.0f}% {s.postgres.cpu_percent:>7.0f}%"
            f" {s.machine_cpu_percent:>4.0f}/200 {s.others_cpu_percent:>5.0f}%"
            f" {s.published_msg_s:>9.0f}  {s.limit}"
        )
    print(
        "  ('others': machine CPU that none of these processes nor the benchmark used: another"
        " workload on the machine, which disturbs the figures)"
    )
    print(
        "\n  where the backlog is, at the end of the window: clients behind = latency of the last"
        " 5 s (growth since the 5th-9th s); ingest behind = published - read by the ingest,"
        " waiting in the broker or lost (constant over a step: lost; see 'fixes' below);"
        " pending: read, not yet stored; kernel queues per client: server send + client"
        " receive"
    )
    print(
        f"  {'clients':>7} {'behind s':>8} {'growth s':>8} {'ingest read/s':>13}"
        f" {'ingest behind':>13} {'pending':>7} {'send KB':>7} {'recv KB':>7}"
    )
    for s in steps:
        print(
            f"  {s.clients:>7} {s.behind_end_s:>8.2f} {s.behind_growth_s:>+8.2f}"
            f" {s.ingest_received_msg_s:>13.0f} {s.ingest_behind_msg:>13,}"
            f" {s.ingest_pending_msg:>7,} {s.kernel_send_kb_per_client:>7.0f}"
            f" {s.kernel_receive_kb_per_client:>7.0f}"
        )
    print("\n  latency timeline: the oldest row received in each second of the window, ms")
    for s in steps:
        print(f"  {s.clients:>7}: {' '.join(str(ms) for ms in s.worst_ms_by_second)}")
    snapshot = next((s for s in steps if s.snapshot_positions), None)
    if snapshot is not None:
        print(
            f"  snapshot on subscribe: {snapshot.snapshot_positions:,} positions,"
            f" {snapshot.snapshot_kb:,.0f} KB; server-side 4408 closes:"
            f" {sum(s.server_closed_too_slow for s in steps)}"
        )
    failures = collections.Counter[str]()
    for s in steps:
        failures.update(s.connect_failures)
    if failures:
        print(f"  connect failures: {dict(failures)}")
    print(f"\n  REST, sequential, {args.rest_calls} calls after {args.rest_warm_ups} warm-ups")
    print(f"  {'read':<40} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'items':>7} {'KB':>6}")
    for r in reads:
        target = f"target p99 <= {r.target_ms:.0f} ms: {r.verdict}" if r.target_ms else ""
        print(
            f"  {r.name:<40} {r.p50_ms:>7.1f} {r.p99_ms:>7.1f} {r.max_ms:>7.1f}"
            f" {r.items:>7,} {r.body_kb:>6.0f}  {target}"
        )
    print(
        f"  during the reads: server CPU {rest_cpu['server']:.0f}%, machine"
        f" {rest_cpu['machine']:.0f}%/200%, others {rest_cpu['others']:.0f}%"
        " (the publishers run; no live client)"
    )
    print()
    for target, met in targets(steps).items():
        print(f"  target {target}: {met}")
    print(
        f"  fixes of the publishing vehicles: {fixes.sent:,} sent, {fixes.acked:,} acknowledged"
        f" by the broker, {fixes.stored:,} stored: {fixes.lost:,} lost"
        f" ({100 * fixes.lost / max(fixes.acked, 1):.1f} %)"
        + (f"; publisher error: {fixes.error}" if fixes.error else "")
    )


def targets(steps: Sequence[ClientStep]) -> dict[str, str]:
    by_clients = {s.clients: s for s in steps}
    result = {}
    step = by_clients.get(TARGET_CLIENTS_P99)
    label = f"p99 <= {TARGET_P99_MS:.0f} ms (all rows) with {TARGET_CLIENTS_P99:,} clients"
    if step is None or step.all_rows is None:
        result[label] = "not measured"
    else:
        met = step.all_rows.p99_ms <= TARGET_P99_MS
        result[label] = f"{'met' if met else 'MISSED'} ({step.all_rows.p99_ms:.0f} ms)"
    step = by_clients.get(TARGET_CLIENTS_HELD)
    label = f"{TARGET_CLIENTS_HELD:,} clients held, none dropped"
    if step is None:
        result[label] = "not measured"
    else:
        met = step.held == TARGET_CLIENTS_HELD and not step.dropped and step.failed_to_connect == 0
        behind = (
            f"; but {step.behind_end_s:.1f} s behind at the end, {step.behind_growth_s:+.1f} s"
            " over the window"
            if step.behind_end_s > 1
            else ""
        )
        result[label] = (
            f"{'met' if met else 'MISSED'} ({step.held} held, {step.failed_to_connect} failed,"
            f" {sum(step.dropped.values())} dropped{behind})"
        )
    return result


# ---------------------------------------------------------------- start to end


@contextlib.asynccontextmanager
async def broker(choice: str, database_url: str) -> AsyncIterator[Endpoint]:
    use_mosquitto = choice == "mosquitto" or (choice == "auto" and mosquitto_reachable())
    if choice == "mosquitto" and not mosquitto_reachable():
        raise SystemExit("Mosquitto is not reachable on 127.0.0.1:1883")
    if use_mosquitto:
        async with mosquitto() as endpoint:
            yield endpoint
    else:
        async with embedded_broker_process(database_url) as endpoint:
            yield endpoint


async def profile_server(
    bench: Bench, seconds: float, clients: int, work_dir: Path
) -> dict[str, Profile]:
    spy = py_spy()
    if spy is None or seconds <= 0:
        say("py-spy not found (pip install py-spy) or --profile-s 0: no profile")
        return {}
    pid = bench.server.pid
    output = work_dir / f"py-spy-live-{pid}-{clients}clients.txt"
    say(f"profiling the server with py-spy for {seconds:.0f} s, {clients} clients connected")
    spying = await start_py_spy(spy, pid, seconds, output)
    await measure_window(bench, seconds + 1, "profile")
    await spying.wait()
    if not output.exists():
        say("  py-spy wrote nothing (ptrace not permitted?)")
        return {}
    return {f"server with {clients} live clients": profile_of(output.read_text())}


async def run(args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    warn_about_neighbours()
    async with bench_database() as url, contextlib.AsyncExitStack() as stack:
        database = url.rsplit("/", 1)[1]
        say(
            f"database {database}; registering {args.vehicles:,} vehicles,"
            f" {args.stored_devices:,} devices on the map, a track day and a route run ..."
        )
        began = time.monotonic()
        world = await register_world(url, args.vehicles, args.stored_devices)
        say(f"registered in {time.monotonic() - began:.0f} s")
        endpoint = await stack.enter_async_context(broker(args.broker, url))
        sampler = ResourceSampler(database)
        sampling = asyncio.create_task(sampler.run(), name="sampler")
        stack.callback(sampling.cancel)
        sampler.watch("broker", endpoint.broker_pid)
        sampler.watch("bench", os.getpid())
        say(f"starting the ingest ({endpoint.name} broker, {args.topology}) ...")
        separate = args.topology == "separate"
        interval = {"SANITRACK_API__LIVE_POSITIONS_INTERVAL_MS": str(args.frame_interval_ms)}
        ingest = await stack.enter_async_context(
            ingest_process(
                url,
                endpoint,
                work_dir,
                extra_env=interval
                | ({"SANITRACK_API__NOTIFY_POSITIONS": "true"} if separate else {}),
                log_name="ingest-live.log",
            )
        )
        sampler.watch("ingest", ingest.process.pid)
        if separate:
            server = await stack.enter_async_context(api_process(url, work_dir, interval))
            sampler.watch(server.name, server.pid)
        else:
            server = Server("ingest", ingest.process.pid, ingest.http_port)
        say(f"ingest running (log {ingest.log_path}); publishing {args.vehicles} msg/s ...")
        preloaded = await stored_fixes(url, world.tenant_id)
        async with contextlib.AsyncExitStack() as load:  # the publisher and the clients
            publisher = await load.enter_async_context(
                fleet_publisher(endpoint, world.topics, float(args.vehicles), sampler)
            )
            bench = Bench(ingest, publisher, sampler, server)
            await measure_window(bench, args.warm_up_s, "publishers warming up")
            rest_start_s = time.time()
            reads = await time_reads(server.http_port, world, args.rest_calls, args.rest_warm_ups)
            rest_cpu = cpu_during(sampler, server, rest_start_s, time.time())
            idle = bench.idle = await idle_step(bench, args.idle_s)
            ws_url = f"ws://127.0.0.1:{server.http_port}/ws/live?token={world.token}"
            bench.workers = await load.enter_async_context(
                client_workers(ws_url, args.connect_per_s, sampler)
            )
            steps: list[ClientStep] = []
            for clients in args.clients:
                steps.append(await client_step(bench, clients, args.step_warm_up_s, args.step_s))
                step = steps[-1]
                say(
                    f"  => {step.held}/{clients} held, p99 all rows"
                    f" {step.all_rows.p99_ms if step.all_rows else float('nan'):.0f} ms,"
                    f" server CPU {step.server.cpu_percent:.0f}%, limit: {step.limit};"
                    f" worst per second: {' '.join(map(str, step.worst_ms_by_second))}"
                )
            profiles = await profile_server(bench, args.profile_s, args.clients[-1], work_dir)
            say("stopping the clients and the publisher ...")
        say("waiting for the ingest to store what it has ...")
        stored = await stored_fixes(url, world.tenant_id, settle_s=3.0) - preloaded
        await stack.aclose()  # ingest and broker: before the figures
        fixes = Fixes.of(publisher.report, stored)
        print_report(args, endpoint, world, idle, steps, reads, rest_cpu, fixes)
        print_profile(endpoint.name, profiles)
        return {
            "broker": endpoint.name,
            "topology": args.topology,
            "vehicles": len(world.topics),
            "devices_on_map": world.on_map + len(world.topics),
            "frame_interval_ms": args.frame_interval_ms,
            "idle": dataclasses.asdict(idle),
            "steps": [dataclasses.asdict(s) for s in steps],
            "rest": [dataclasses.asdict(r) | {"verdict": r.verdict} for r in reads],
            "rest_cpu_percent": rest_cpu,
            "targets": targets(steps),
            "fixes": dataclasses.asdict(fixes),
            "profiles": {name: dataclasses.asdict(p) for name, p in profiles.items()},
        }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.live", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--clients", default=None, help="client counts (100,1000,2000)")
    parser.add_argument(
        "--topology",
        choices=("separate", "one-process"),
        default="separate",
        help="separate: `sanitrack api` serves the map, the ingest announces positions over"
        " NOTIFY (production); one-process: the ingest serves the map itself (the demo)",
    )
    parser.add_argument("--step-s", type=float, default=None, help="measured per step (30)")
    parser.add_argument("--step-warm-up-s", type=float, default=None, help="per step (10)")
    parser.add_argument("--warm-up-s", type=float, default=None, help="publishing before (10)")
    parser.add_argument("--idle-s", type=float, default=None, help="no-client baseline (10)")
    parser.add_argument("--vehicles", type=int, default=1000, help="publishing at 1 fix/s")
    parser.add_argument(
        "--stored-devices", type=int, default=10_000, help="on the map at start, publishers too"
    )
    parser.add_argument("--connect-per-s", type=float, default=100.0, help="all workers")
    parser.add_argument(
        "--frame-interval-ms", type=int, default=FRAME_INTERVAL_MS, help="positions frames"
    )
    parser.add_argument("--rest-calls", type=int, default=None, help="per read (50)")
    parser.add_argument("--rest-warm-ups", type=int, default=None, help="per read (5)")
    parser.add_argument("--profile-s", type=float, default=None, help="py-spy (10; 0: none)")
    parser.add_argument("--broker", choices=["auto", "mosquitto", "embedded"], default="auto")
    parser.add_argument("--quick", action="store_true", help="100 and 300 clients, 10 s steps")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON")
    args = parser.parse_args(argv)
    quick = args.quick
    args.clients = [
        int(n) for n in (args.clients or ("100,300" if quick else "100,1000,2000")).split(",")
    ]
    if any(n < 1 for n in args.clients) or args.clients != sorted(args.clients):
        parser.error("--clients: positive and increasing, e.g. 100,1000,2000")
    defaults = {
        "step_s": (10.0, 30.0),
        "step_warm_up_s": (5.0, 10.0),
        "warm_up_s": (5.0, 10.0),
        "idle_s": (5.0, 10.0),
        "rest_calls": (10, 50),
        "rest_warm_ups": (2, 5),
        "profile_s": (3.0, 10.0),
    }
    for name, (short, full) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, short if quick else full)
    if args.vehicles < 1 or args.connect_per_s <= 0:
        parser.error("--vehicles and --connect-per-s must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.monotonic()
    with work_directory(args.out) as work_dir:
        report = asyncio.run(run(args, work_dir))
    print(f"\ntotal time {time.monotonic() - began:.0f} s")
    if args.quick:
        print("quick run: short steps and few clients, so the targets say little here")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2, default=str))
        print(f"wrote {args.out} (ingest log and raw py-spy stacks in {work_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
