"""Ingest throughput and publish->commit latency, through Mosquitto and the embedded amqtt broker.

Run from the repository root (it prints figures; it is not a pass/fail test):

    .venv/bin/python -m bench.ingest [--broker both] [--duration-s 60] [--quick] [--out r.json]

Every part runs in its own process, as in production:

* PostgreSQL on 127.0.0.1:5432: a fresh database ``sanitrack_bench_<random>``,
  migrated, with devices registered through ``fleet``; dropped at the end.
* The broker: the machine's Mosquitto on 127.0.0.1:1883, or the embedded amqtt
  broker (``broker.embedded_broker`` with device logins and the topic ACL)
  started in a process of its own.
* The ingest: ``python -m sanitrack.cli ingest``, configured by SANITRACK_ variables.
* The publisher: paho-mqtt, one connection per registered device (each logs in
  as that device and publishes to its own topic), QoS 1, paced by a token bucket.
* The bare subscriber (ceiling): aiomqtt, the ingest's MQTT client, on the same
  subscription, counting messages and nothing else.

Publish->commit latency. Every fix carries the instant its message was handed
to paho: ``seq`` is that instant in epoch microseconds (``ts`` is the same
instant, made unique per device). A side connection records every 20 ms
``(clock_timestamp(), pg_current_snapshot())``. After a step the benchmark
reads ``(xmin, seq)`` of the step's rows: a row's commit time is the first
recorded instant whose snapshot sees the row's inserting transaction (each
ingest batch is one transaction), so it is exact to within one poll (20 ms,
upper bound), and its latency is that commit time minus ``seq``. The schema is
untouched and PostgreSQL pays one tiny query per poll.

Rates. Offered = messages handed to paho / publishing time. Accepted = rows
committed / (last commit - first publish). Loss = fixes the broker
acknowledged to the publisher that never reached ``positions``.

Per broker: (a) the bare subscriber climbs the single-fix rate ladder; (b) the
ingest climbs it (10 s steps) until a step fails; (1) single-fix messages for
--duration-s at the best rate (once more one step lower if that rate does not
hold); (2) the 10-fix ladder, then half that duration at its best rate; (3) half
that duration at half the rate of (1), for latency; then py-spy profiles the
ingest (and the amqtt broker) at the rates of (1) and (2). A step passes when
nothing is lost, p99 <= 1 s, and the publisher really offered >= 95 % of the
target (if not, the publisher is the limit and the step says so).

Loss through the machine's Mosquitto: it runs with the default
``max_queued_messages 1000``, so once the ingest is ~21,000 messages behind
(20,000 in flight + 1,000 queued) Mosquitto drops the rest silently. The
production config (deploy/mosquitto) queues 1,000,000: there an overloaded
step would show as a growing backlog (p99) instead of loss.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import collections
import contextlib
import ctypes
import dataclasses
import datetime as dt
import json
import multiprocessing
import multiprocessing.process
import multiprocessing.queues
import multiprocessing.synchronize
import os
import queue
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import aiomqtt
import orjson
import paho.mqtt.client as paho
import psutil
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from psycopg import sql

import fleet
from bench.children import SPAWN, child, die_with_parent
from broker import BrokerAccess, ServiceAccount, embedded_broker, free_port
from ingest.mqtt import MqttEndpoint, messages, subscriber_client
from sanitrack.clock import SystemClock
from sanitrack.settings import load_settings
from storage import POSITION_COLUMNS, PositionRow, apply_migrations, maintain, open_pool
from storage import write_positions as staged_write

REPO = Path(__file__).resolve().parent.parent
SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
MOSQUITTO = ("127.0.0.1", 1883)
SERVICE_USERNAME = "sanitrack-service"  # sanitrack.app.SERVICE_USERNAME (that import is heavy)
POSITION_TOPICS = ("sanitrack/+/dev/+/pos",)  # what the ingest subscribes to for positions
PUBLISHER_CONNECTIONS = 8
POLL_S = 0.02
SAMPLE_S = 0.5
MAX_P99_S = 1.0
DRAIN_STALL_S = 5.0
DRAIN_MAX_S = 60.0
COPY_BATCH_ROWS = 5000  # the ingest's default batch_max_rows
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


# ---------------------------------------------------------------- what is measured


@dataclass(frozen=True, slots=True)
class Plan:
    """Rate ladders (messages/s) and durations for one broker."""

    single_rates_msg_s: tuple[int, ...]
    batch_rates_msg_s: tuple[int, ...]
    step_s: float
    sustained_s: float
    profile_s: float

    def quick(self, sustained_s: float) -> Plan:
        return Plan(self.single_rates_msg_s[:2], self.batch_rates_msg_s[:2], 3, sustained_s, 3)


PLANS = {
    "mosquitto": Plan(
        single_rates_msg_s=(2000, 4000, 6000, 8000, 9000, 10_000, 11_000, 12_000, 14_000, 16_000),
        batch_rates_msg_s=(1000, 2000, 3000, 3500, 4000, 5000),
        step_s=10,
        sustained_s=60,
        profile_s=10,
    ),
    "embedded": Plan(
        single_rates_msg_s=(1000, 2000, 3000, 4000, 5000, 6000, 8000),
        batch_rates_msg_s=(200, 400, 800, 1200, 1600, 2000),
        step_s=10,
        sustained_s=60,
        profile_s=10,
    ),
}


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    host: str
    port: int
    username: str | None
    password: str | None
    protocol: int  # 5, or 4 for MQTT 3.1.1 (amqtt)
    broker_pid: int | None  # the broker's process, for CPU and RSS


@dataclass(frozen=True, slots=True)
class Login:
    username: str
    password: str
    topic: str


@dataclass(frozen=True, slots=True)
class PublishJob:
    host: str
    port: int
    logins: tuple[Login, ...]
    rate_msg_s: float
    duration_s: float
    fixes_per_message: int


@dataclass(frozen=True, slots=True)
class PublishReport:
    sent: int
    acked: int
    first_publish_s: float  # epoch seconds
    last_publish_s: float
    error: str | None = None

    @property
    def offered_msg_s(self) -> float:
        return self.sent / max(self.last_publish_s - self.first_publish_s, 1e-9)


@dataclass(frozen=True, slots=True)
class Usage:
    """CPU (100 = one core, mean over the publishing window) and peak RSS of a process group."""

    cpu_percent: float
    peak_rss_mb: float

    def __str__(self) -> str:
        rss = f" RSS {self.peak_rss_mb:4.0f} MB" if self.peak_rss_mb else ""
        return f"CPU {self.cpu_percent:3.0f}%{rss}"


@dataclass(frozen=True, slots=True)
class Latency:
    p50_ms: float
    p99_ms: float
    max_ms: float


@dataclass(frozen=True, slots=True)
class StepResult:
    broker: str
    scenario: str
    target_msg_s: int
    fixes_per_message: int
    published_msg: int
    offered_msg_s: float
    committed_fixes: int
    loss_fixes: int
    dead_letters: int
    accepted_msg_s: float
    accepted_fixes_s: float
    latency: Latency | None
    usage: dict[str, Usage]
    machine_cpu_percent: float
    verdict: str


@dataclass(frozen=True, slots=True)
class CeilingStep:
    broker: str
    target_msg_s: int
    offered_msg_s: float
    received_msg: int
    lost_msg: int
    received_msg_s: float
    subscriber: Usage
    verdict: str


@dataclass(frozen=True, slots=True)
class CopyCeiling:
    rows: int
    bare_copy_rows_s: float  # COPY straight into positions
    staged_rows_s: float  # storage.write_positions: COPY to staging + INSERT .. ON CONFLICT


@dataclass(frozen=True, slots=True)
class ProfileLine:
    function: str
    own_percent: float
    cumulative_percent: float


@dataclass(frozen=True, slots=True)
class Profile:
    """Shares of py-spy samples: by package (own time), and the top functions."""

    samples: int
    by_package: dict[str, float]
    top_own: list[ProfileLine]
    top_cumulative_sanitrack: list[ProfileLine]  # functions of this repository only


# ---------------------------------------------------------------- the publisher process


class TokenBucket:
    """Tokens accrue at ``rate_per_s`` up to ``burst``; a publisher that cannot keep
    up loses the surplus instead of bursting later, so its offered rate drops."""

    def __init__(self, rate_per_s: float, burst: float, now_s: float) -> None:
        self._rate_per_s = rate_per_s
        self._burst = burst
        self._tokens = 0.0
        self._last_s = now_s

    def take(self, now_s: float) -> int:
        self._tokens = min(self._burst, self._tokens + (now_s - self._last_s) * self._rate_per_s)
        self._last_s = now_s
        whole = int(self._tokens)
        self._tokens -= whole
        return whole


class DeviceConnection:
    """One device's paho connection, driven by the publisher's single thread.

    paho's loop_start() gives every connection a network thread; with eight of
    them the GIL hand-offs cost ~160 us of CPU per message (measured here),
    five times the ~35 us of one thread calling publish() (which writes at
    once) and loop(timeout=0) (which reads the PUBACKs). On two cores that
    difference would be taken from the ingest under test.
    """

    def __init__(self, host: str, port: int, login: Login) -> None:
        self.login = login
        self.acked = 0
        self.error: str | None = None
        self.connected = False
        self._last_ts_us = 0
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"bench-pub-{secrets.token_hex(4)}",
            protocol=paho.MQTTv311,
        )
        client.username_pw_set(login.username, login.password)
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_publish = self._on_publish
        client.connect(host, port, keepalive=60)
        self._client = client

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self.error = f"{self.login.username}: connection refused ({reason})"
        self.connected = True

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        self.acked += 1

    def wait_connected(self, timeout_s: float) -> None:
        deadline_s = time.monotonic() + timeout_s
        while not self.connected and time.monotonic() < deadline_s:
            self._client.loop(timeout=0.05)
        if not self.connected or self.error:
            raise RuntimeError(self.error or f"{self.login.username}: no CONNACK")

    def publish(self, fixes: int) -> None:
        publish_us = time.time_ns() // 1000
        ts_us = max(publish_us, self._last_ts_us + 1)  # (device, ts) must stay unique
        self._last_ts_us = ts_us + fixes - 1
        self._client.publish(self.login.topic, fix_payload(publish_us, ts_us, fixes), qos=1)

    def service(self) -> None:
        """Read PUBACKs, write what is queued, keep the connection alive; never blocks."""
        self._client.loop(timeout=0)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop(timeout=0.1)


def fix_payload(publish_us: int, ts_us: int, fixes: int) -> bytes:
    """A fix object, or an array of ``fixes`` fixes; all within a few metres (no jumps)."""
    items = [
        {
            "ts": EPOCH + dt.timedelta(microseconds=ts_us + k),
            "lat": 20.97123 + (ts_us + k) % 1000 * 1e-7,
            "lon": 105.77231,
            "speed_kmh": 23.4,
            "heading_deg": 181.0,
            "accuracy_m": 5.0,
            "sats": 9,
            "seq": publish_us,
            "ignition": True,
            "battery_pct": 87,
        }
        for k in range(fixes)
    ]
    return orjson.dumps(items[0] if fixes == 1 else items)


def publish_worker(job: PublishJob, results: multiprocessing.queues.Queue[PublishReport]) -> None:
    """Process entry: connect every device, publish at the job's rate, wait for the PUBACKs."""
    connections = [DeviceConnection(job.host, job.port, login) for login in job.logins]
    try:
        for connection in connections:
            connection.wait_connected(15)
        results.put(_paced_publish(job, connections))
    except Exception as exc:
        results.put(PublishReport(0, 0, 0.0, 0.0, error=repr(exc)))
    finally:
        for connection in connections:
            connection.close()


def _paced_publish(job: PublishJob, connections: list[DeviceConnection]) -> PublishReport:
    start_s = time.monotonic()
    bucket = TokenBucket(job.rate_msg_s, max(1.0, job.rate_msg_s * 0.02), start_s)
    sent = 0
    first_publish_s = time.time()
    while (now_s := time.monotonic()) < start_s + job.duration_s:
        for _ in range(bucket.take(now_s)):
            connections[sent % len(connections)].publish(job.fixes_per_message)
            sent += 1
        for connection in connections:
            connection.service()
        time.sleep(0.001)
    last_publish_s = time.time()
    deadline_s = time.monotonic() + 30
    while sum(c.acked for c in connections) < sent and time.monotonic() < deadline_s:
        for connection in connections:
            connection.service()
        time.sleep(0.001)
    acked = sum(c.acked for c in connections)
    return PublishReport(sent, acked, first_publish_s, last_publish_s)


# ---------------------------------------------------------------- the bare subscriber process


def subscriber_worker(
    endpoint: Endpoint,
    received: ctypes.c_longlong,
    ready: multiprocessing.synchronize.Event,
    stop: multiprocessing.synchronize.Event,
) -> None:
    """Process entry: subscribe like the ingest does and count messages until ``stop``."""
    asyncio.run(_count_messages(endpoint, received, ready, stop))


async def _count_messages(
    endpoint: Endpoint,
    received: ctypes.c_longlong,
    ready: multiprocessing.synchronize.Event,
    stop: multiprocessing.synchronize.Event,
) -> None:
    async with mqtt_client(endpoint, f"bench-bare-{secrets.token_hex(4)}") as client:
        await client.subscribe([(topic, 1) for topic in POSITION_TOPICS])
        counting = asyncio.create_task(_count(client, received), name="count")
        ready.set()
        await asyncio.to_thread(stop.wait)
        counting.cancel()


async def _count(client: aiomqtt.Client, received: ctypes.c_longlong) -> None:
    async for _ in messages(client):  # the ingest's way of reading, so the ceiling is fair
        received.value += 1


def mqtt_client(endpoint: Endpoint, client_id: str) -> aiomqtt.Client:
    """A clean-session client with the ingest's flow-control bound (Receive Maximum)."""
    return subscriber_client(
        MqttEndpoint(
            endpoint.host,
            endpoint.port,
            endpoint.username,
            endpoint.password,
            protocol=endpoint.protocol,
        ),
        client_id,
        load_settings().ingest.max_pending_messages,
    )


# ---------------------------------------------------------------- the embedded broker process


def broker_worker(
    database_url: str,
    port: int,
    service_password: str,
    ready: multiprocessing.synchronize.Event,
    stop: multiprocessing.synchronize.Event,
) -> None:
    """Process entry: the embedded amqtt broker with device logins, until ``stop``."""
    asyncio.run(_serve_broker(database_url, port, service_password, ready, stop))


async def _serve_broker(
    database_url: str,
    port: int,
    service_password: str,
    ready: multiprocessing.synchronize.Event,
    stop: multiprocessing.synchronize.Event,
) -> None:
    service = ServiceAccount(SERVICE_USERNAME, service_password)
    async with open_pool(database_url, min_size=1, max_size=4) as pool:
        access = BrokerAccess(
            pool, service, SystemClock(), load_settings().broker.credential_cache_s
        )
        async with embedded_broker(access, service, "127.0.0.1", port):
            ready.set()
            await asyncio.to_thread(stop.wait)


@contextlib.asynccontextmanager
async def embedded_broker_process(database_url: str) -> AsyncIterator[Endpoint]:
    port, password = free_port(), secrets.token_urlsafe(18)
    ready, stop = SPAWN.Event(), SPAWN.Event()
    process = child(broker_worker, (database_url, port, password, ready, stop), "amqtt")
    process.start()
    try:
        if not await asyncio.to_thread(ready.wait, 30):
            raise RuntimeError("the embedded broker did not start within 30 s")
        yield Endpoint("embedded", "127.0.0.1", port, SERVICE_USERNAME, password, 4, process.pid)
    finally:
        stop.set()
        await asyncio.to_thread(process.join, 10)
        if process.is_alive():
            process.kill()
            process.join()


@contextlib.asynccontextmanager
async def mosquitto() -> AsyncIterator[Endpoint]:
    pids = [p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "mosquitto"]
    yield Endpoint("mosquitto", *MOSQUITTO, None, None, 5, pids[0] if pids else None)


DEPLOYED_MOSQUITTO_CONF = REPO / "deploy" / "mosquitto" / "mosquitto.conf"
# What a deployment's broker holds for a lagging ingest, and how it keeps it on disk
# (deploy/mosquitto/mosquitto.conf).
DEPLOYED_OPTIONS = (
    "max_queued_messages",
    "max_queued_bytes",
    "max_inflight_messages",
    "persistence",
    "autosave_interval",
)


@contextlib.asynccontextmanager
async def own_mosquitto(work_dir: Path) -> AsyncIterator[Endpoint]:
    """A Mosquitto of this benchmark's own, on a free port, with the deployment's queue
    limits and persistence (the machine's keeps 1,000 queued messages a session and drops
    what a lagging ingest has not read, where a deployment would hold it; and it carries
    whatever other sessions the machine's tests left subscribed), without logins; it dies
    with the benchmark and leaves its files in ``work_dir``."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    deployed = DEPLOYED_MOSQUITTO_CONF.read_text().splitlines()
    options = [line for line in deployed if line.split(" ", 1)[0] in DEPLOYED_OPTIONS]
    port = free_port()
    data_dir = work_dir / f"mosquitto-bench-{port}"
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "mosquitto.conf"
    log_path = data_dir / "mosquitto.log"
    config.write_text(
        "\n".join(
            [
                f"listener {port} 127.0.0.1",
                "allow_anonymous true",
                *options,
                f"persistence_location {data_dir}/",
                f"log_dest file {log_path}",
                "log_type error",
                "log_type warning",
                "",
            ]
        )
    )
    process = await asyncio.create_subprocess_exec(
        binary,
        "-c",
        str(config),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )
    try:
        deadline_s = time.monotonic() + 15
        while not _reachable(("127.0.0.1", port)):
            if process.returncode is not None or time.monotonic() > deadline_s:
                raise RuntimeError(f"mosquitto did not start on port {port}; see {log_path}")
            await asyncio.sleep(0.05)
        yield Endpoint("mosquitto", "127.0.0.1", port, None, None, 5, process.pid)
    finally:
        await stop_process(process)


def mosquitto_reachable() -> bool:
    return _reachable(MOSQUITTO)


def _reachable(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=1):
            return True
    except OSError:
        return False


def forget_mosquitto_session(endpoint: Endpoint, client_id: str) -> None:
    """Connect once with clean start and no expiry so Mosquitto drops the ingest's session
    (otherwise it would keep queueing messages for it after the benchmark)."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = 0
    client.connect(endpoint.host, endpoint.port, clean_start=True, properties=properties)
    client.loop(timeout=1.0)
    client.disconnect()


# ---------------------------------------------------------------- database


@contextlib.asynccontextmanager
async def bench_database() -> AsyncIterator[str]:
    name = f"sanitrack_bench_{secrets.token_hex(5)}"
    async with await psycopg.AsyncConnection.connect(SERVER_URL, autocommit=True) as conn:
        await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = SERVER_URL.rsplit("/", 1)[0] + "/" + name
    try:
        await apply_migrations(url)
        async with await psycopg.AsyncConnection.connect(url) as conn:
            await maintain(conn, load_settings().positions, SystemClock().now())
        yield url
    finally:
        async with await psycopg.AsyncConnection.connect(SERVER_URL, autocommit=True) as conn:
            await conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        print(f"dropped database {name}", flush=True)


async def register_devices(url: str, count: int) -> tuple[list[Login], list[tuple[int, int]]]:
    """Devices through fleet: their logins and (device_id, tenant_id).

    The tenant is new for each run: another ingest on the same Mosquitto sees
    this run's fixes as unknown devices instead of storing them as its own.
    """
    logins, ids = [], []
    async with await psycopg.AsyncConnection.connect(url) as conn:
        slug = f"bench-{secrets.token_hex(3)}"
        tenant = await fleet.ensure_tenant(conn, slug, "Benchmark")
        for n in range(count):
            created = await fleet.create_device(conn, tenant, f"truck-{n}", fleet.DeviceKind.TRUCK)
            topic = f"sanitrack/{tenant.slug}/dev/{created.device.slug}/pos"
            logins.append(Login(created.username, created.secret, topic))
            ids.append((created.device.id, tenant.id))
        await conn.commit()
    return logins, ids


async def empty_tables(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.execute("TRUNCATE positions, dead_letters")


async def count_rows(conn: psycopg.AsyncConnection[Any], table: str) -> int:
    cursor = await conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
    row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def wait_drained(conn: psycopg.AsyncConnection[Any], expected: int) -> int:
    """Poll until ``expected`` rows are stored, nothing new arrived for a while, or time is up."""
    deadline_s = time.monotonic() + DRAIN_MAX_S
    rows, progress_s = -1, time.monotonic()
    while time.monotonic() < deadline_s:
        now_rows = await count_rows(conn, "positions")
        if now_rows >= expected:
            return now_rows
        if now_rows != rows:
            rows, progress_s = now_rows, time.monotonic()
        elif time.monotonic() - progress_s > DRAIN_STALL_S:
            break
        await asyncio.sleep(0.2)
    return rows


# ---------------------------------------------------------------- commit times


@dataclass(frozen=True, slots=True)
class SnapshotPoll:
    at_s: float
    xmin: int
    xmax: int
    in_progress: frozenset[int]

    def sees(self, xid: int) -> bool:
        return xid < self.xmin or (xid < self.xmax and xid not in self.in_progress)


def parse_snapshot(at_s: float, text: str) -> SnapshotPoll:
    xmin, xmax, xip = text.split(":")
    return SnapshotPoll(at_s, int(xmin), int(xmax), frozenset(int(x) for x in xip.split(",") if x))


class CommitProbe:
    """Records (time, snapshot) every POLL_S on its own connection (see the module docstring)."""

    def __init__(self, url: str) -> None:
        self._url = url
        self.polls: list[SnapshotPoll] = []
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def run(self) -> None:
        async with await psycopg.AsyncConnection.connect(self._url, autocommit=True) as conn:
            self._conn = conn
            while True:
                await self.poll()
                await asyncio.sleep(POLL_S)

    async def poll(self) -> None:
        if self._conn is None:
            return
        cursor = await self._conn.execute(
            "SELECT extract(epoch FROM clock_timestamp())::float8, pg_current_snapshot()::text"
        )
        row = await cursor.fetchone()
        if row is not None:
            self.polls.append(parse_snapshot(row[0], row[1]))

    def commit_time_s(self, xid32: int) -> float | None:
        """When the transaction became visible (first poll that sees it), or None."""
        if not self.polls:
            return None
        latest = self.polls[-1].xmax
        xid = (latest >> 32 << 32) | xid32  # a row's xmin is 32 bits; snapshots are 64
        if xid >= latest:
            xid -= 1 << 32
        index = bisect.bisect_left(self.polls, True, key=lambda poll: poll.sees(xid))
        return self.polls[index].at_s if index < len(self.polls) else None


async def commit_latency(
    conn: psycopg.AsyncConnection[Any], probe: CommitProbe
) -> tuple[Latency | None, float]:
    """Latency percentiles of every stored row, and the last commit time (epoch s)."""
    await probe.poll()
    cursor = await conn.execute("SELECT xmin::text::bigint, seq FROM positions")
    rows = await cursor.fetchall()
    if not rows:
        return None, 0.0
    commits = {xid: probe.commit_time_s(xid) for xid in {xid for xid, _ in rows}}
    latencies_s = sorted(
        commit - seq / 1e6 for xid, seq in rows if (commit := commits[xid]) is not None
    )
    last_commit_s = max(c for c in commits.values() if c is not None)
    cuts = statistics.quantiles(latencies_s, n=100, method="inclusive")
    return Latency(cuts[49] * 1000, cuts[98] * 1000, latencies_s[-1] * 1000), last_commit_s


# ---------------------------------------------------------------- CPU and memory


class ResourceSampler:
    """Samples CPU% and RSS of named process groups every SAMPLE_S."""

    def __init__(self, database: str) -> None:
        self._database = database
        self._groups: dict[str, dict[int, psutil.Process]] = collections.defaultdict(dict)
        self._samples: list[tuple[float, str, float, float]] = []  # at, group, cpu%, rss MB
        self._machine: list[tuple[float, float]] = []

    def watch(self, group: str, pid: int | None) -> None:
        if pid is not None:
            with contextlib.suppress(psutil.Error):
                process = psutil.Process(pid)
                process.cpu_percent(None)
                self._groups[group][pid] = process

    async def run(self) -> None:
        psutil.cpu_percent(None)
        while True:
            await asyncio.sleep(SAMPLE_S)
            self._find_postgres_backends()
            now_s = time.time()
            self._machine.append((now_s, psutil.cpu_percent(None) * psutil.cpu_count()))
            for group, processes in self._groups.items():
                cpu, rss = 0.0, 0.0
                for pid, process in list(processes.items()):
                    try:
                        cpu += process.cpu_percent(None)
                        if group != "postgres":  # backends' RSS counts shared buffers again
                            rss += process.memory_info().rss / 2**20
                    except psutil.Error:
                        del processes[pid]
                self._samples.append((now_s, group, cpu, rss))

    def _find_postgres_backends(self) -> None:
        known = self._groups["postgres"]
        for process in psutil.process_iter(["name", "cmdline"]):
            cmdline = " ".join(process.info["cmdline"] or ())
            if process.pid not in known and f" {self._database} " in cmdline:
                self.watch("postgres", process.pid)

    def usage(self, group: str, start_s: float, end_s: float) -> Usage:
        window = [(c, r) for at, g, c, r in self._samples if g == group and start_s < at <= end_s]
        if not window:
            return Usage(0.0, 0.0)
        return Usage(statistics.fmean(c for c, _ in window), max(r for _, r in window))

    def machine_cpu(self, start_s: float, end_s: float) -> float:
        window = [cpu for at, cpu in self._machine if start_s < at <= end_s]
        return statistics.fmean(window) if window else 0.0


# ---------------------------------------------------------------- the ingest process


@dataclass(slots=True)
class IngestProcess:
    process: asyncio.subprocess.Process
    http_port: int
    client_id: str
    log_path: Path

    def metrics(self) -> dict[str, float]:
        """sanitrack_ingest_* values from /metrics (labels dropped, summed)."""
        url = f"http://127.0.0.1:{self.http_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        values: dict[str, float] = collections.defaultdict(float)
        for line in text.splitlines():
            if line.startswith("sanitrack_ingest_"):
                name, _, value = line.rpartition(" ")
                values[name.split("{")[0]] += float(value)
        return dict(values)


def ingest_env(
    database_url: str, endpoint: Endpoint, client_id: str, http_port: int
) -> dict[str, str]:
    credentials = f"{endpoint.username}:{endpoint.password}@" if endpoint.username else ""
    return {
        # SANITRACK_RULES__* pass through (SANITRACK_RULES__ENABLED=false: ingest alone)
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith("SANITRACK_") or k.startswith("SANITRACK_RULES__")
        },
        "SANITRACK_DATABASE_URL": database_url,
        "SANITRACK_MQTT_URL": f"mqtt://{credentials}{endpoint.host}:{endpoint.port}",
        "SANITRACK_INGEST__MQTT_PROTOCOL": "5" if endpoint.protocol == 5 else "3.1.1",
        "SANITRACK_INGEST__CLIENT_ID": client_id,
        "SANITRACK_INGEST__SESSION_EXPIRY_S": "300",
        "SANITRACK_HTTP_PORT": str(http_port),
        "SANITRACK_LOG_LEVEL": "WARNING",
    }


@contextlib.asynccontextmanager
async def ingest_process(
    database_url: str,
    endpoint: Endpoint,
    work_dir: Path,
    extra_env: dict[str, str] | None = None,
    log_name: str | None = None,
) -> AsyncIterator[IngestProcess]:
    """``sanitrack ingest`` in a process of its own (``extra_env``: more settings)."""
    client_id = f"bench-ingest-{secrets.token_hex(4)}"
    http_port = free_port()
    log_path = work_dir / (log_name or f"ingest-{endpoint.name}.log")
    env = ingest_env(database_url, endpoint, client_id, http_port) | (extra_env or {})
    with open_for_writing(log_path) as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sanitrack.cli",
            "ingest",
            env=env,
            cwd=REPO,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
    ingest = IngestProcess(process, http_port, client_id, log_path)
    try:
        await wait_subscribed(ingest)
        yield ingest
    finally:
        await stop_process(process)
        if endpoint.name == "mosquitto":
            await asyncio.to_thread(forget_mosquitto_session, endpoint, client_id)


async def wait_subscribed(ingest: IngestProcess) -> None:
    deadline_s = time.monotonic() + 60
    while time.monotonic() < deadline_s:
        if ingest.process.returncode is not None:
            raise RuntimeError(f"ingest exited early; see {ingest.log_path}")
        with contextlib.suppress(OSError, urllib.error.URLError):
            metrics = await asyncio.to_thread(ingest.metrics)
            if metrics.get("sanitrack_ingest_broker_connected") == 1.0:
                await asyncio.sleep(1.0)  # SUBACK follows CONNACK
                return
        await asyncio.sleep(0.3)
    raise RuntimeError(f"ingest did not connect within 60 s; see {ingest.log_path}")


async def stop_process(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()


# ---------------------------------------------------------------- one rate step


@dataclass(slots=True)
class Bench:
    """Everything a step needs, for one broker."""

    database_url: str
    database: str
    endpoint: Endpoint
    logins: tuple[Login, ...]
    conn: psycopg.AsyncConnection[Any]
    probe: CommitProbe
    sampler: ResourceSampler
    plan: Plan
    work_dir: Path


async def publish(bench: Bench, rate_msg_s: int, duration_s: float, fixes: int) -> PublishReport:
    """Run the publisher process for one step and return what it did."""
    job = PublishJob(
        bench.endpoint.host, bench.endpoint.port, bench.logins, rate_msg_s, duration_s, fixes
    )
    results: multiprocessing.queues.Queue[PublishReport] = SPAWN.Queue()
    process = child(publish_worker, (job, results), "publisher")
    process.start()
    bench.sampler.watch("publisher", process.pid)
    try:
        report = await asyncio.to_thread(publisher_report, process, results, duration_s + 60)
        await asyncio.to_thread(process.join, 30)
    finally:
        if process.is_alive():
            process.kill()
            process.join()
    if report.error:
        raise RuntimeError(f"publisher failed: {report.error}")
    return report


def publisher_report(
    process: multiprocessing.process.BaseProcess,
    results: multiprocessing.queues.Queue[PublishReport],
    timeout_s: float,
) -> PublishReport:
    """The worker's report; fails at once if the worker died without one."""
    deadline_s = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(queue.Empty):
            return results.get(timeout=0.5)
        if not process.is_alive():
            raise RuntimeError(f"the publisher process died (exit code {process.exitcode})")
        if time.monotonic() > deadline_s:
            raise RuntimeError(f"the publisher sent no report within {timeout_s:.0f} s")


def usage_of(bench: Bench, report: PublishReport) -> dict[str, Usage]:
    window = (report.first_publish_s, report.last_publish_s + SAMPLE_S)
    groups = ("ingest", "publisher", "broker", "postgres", "bench")
    return {group: bench.sampler.usage(group, *window) for group in groups}


async def ingest_step(
    bench: Bench, scenario: str, rate_msg_s: int, duration_s: float, fixes: int
) -> StepResult:
    await empty_tables(bench.conn)
    bench.probe.polls.clear()
    report = await publish(bench, rate_msg_s, duration_s, fixes)
    rows = await wait_drained(bench.conn, report.acked * fixes)
    latency, last_commit_s = await commit_latency(bench.conn, bench.probe)
    dead_letters = await count_rows(bench.conn, "dead_letters")
    accepted_fixes_s = rows / max(last_commit_s - report.first_publish_s, 1e-9)
    loss = report.acked * fixes - rows
    return StepResult(
        broker=bench.endpoint.name,
        scenario=scenario,
        target_msg_s=rate_msg_s,
        fixes_per_message=fixes,
        published_msg=report.acked,
        offered_msg_s=report.offered_msg_s,
        committed_fixes=rows,
        loss_fixes=loss,
        dead_letters=dead_letters,
        accepted_msg_s=accepted_fixes_s / fixes,
        accepted_fixes_s=accepted_fixes_s,
        latency=latency,
        usage=usage_of(bench, report),
        machine_cpu_percent=bench.sampler.machine_cpu(
            report.first_publish_s, report.last_publish_s
        ),
        verdict=verdict(rate_msg_s, report, loss + (report.sent - report.acked) * fixes, latency),
    )


def verdict(target_msg_s: int, report: PublishReport, loss: int, latency: Latency | None) -> str:
    if loss > 0:
        return "LOSS"
    if latency is None or latency.p99_ms > MAX_P99_S * 1000:
        return "BEHIND"
    if report.offered_msg_s < 0.95 * target_msg_s:
        return "PUBLISHER-BOUND"
    return "ok"


async def ceiling_step(bench: Bench, rate_msg_s: int, received: ctypes.c_longlong) -> CeilingStep:
    before = received.value
    report = await publish(bench, rate_msg_s, bench.plan.step_s, 1)
    await poll_until(lambda: received.value - before >= report.acked, timeout_s=10)
    done_s = time.time()
    count = received.value - before
    lost = report.acked - count
    window = (report.first_publish_s, report.last_publish_s + SAMPLE_S)
    behind = done_s - report.last_publish_s > MAX_P99_S
    return CeilingStep(
        broker=bench.endpoint.name,
        target_msg_s=rate_msg_s,
        offered_msg_s=report.offered_msg_s,
        received_msg=count,
        lost_msg=lost,
        received_msg_s=count / max(done_s - report.first_publish_s, 1e-9),
        subscriber=bench.sampler.usage("subscriber", *window),
        verdict="LOSS"
        if lost > 0
        else "BEHIND"
        if behind
        else "PUBLISHER-BOUND"
        if report.offered_msg_s < 0.95 * rate_msg_s
        else "ok",
    )


async def poll_until(done: Callable[[], bool], timeout_s: float) -> None:
    deadline_s = time.monotonic() + timeout_s
    while True:
        if done() or time.monotonic() > deadline_s:
            return
        await asyncio.sleep(POLL_S)


# ---------------------------------------------------------------- scenarios


def say(bench: Bench, text: str) -> None:
    print(f"[{bench.endpoint.name}] {text}", flush=True)


async def subscriber_ceiling(bench: Bench) -> list[CeilingStep]:
    received = SPAWN.RawValue(ctypes.c_longlong, 0)
    ready, stop = SPAWN.Event(), SPAWN.Event()
    process = child(subscriber_worker, (bench.endpoint, received, ready, stop), "bare-sub")
    process.start()
    bench.sampler.watch("subscriber", process.pid)
    steps: list[CeilingStep] = []
    try:
        if not await asyncio.to_thread(ready.wait, 30):
            raise RuntimeError("the bare subscriber did not subscribe within 30 s")
        for rate in bench.plan.single_rates_msg_s:
            say(bench, f"bare subscriber: {rate} msg/s for {bench.plan.step_s:g} s ...")
            steps.append(await ceiling_step(bench, rate, received))
            say(bench, "  " + format_ceiling(steps[-1]))
            if steps[-1].verdict != "ok":
                break
    finally:
        stop.set()
        await asyncio.to_thread(process.join, 10)
        if process.is_alive():
            process.kill()
    return steps


async def ladder(bench: Bench, rates: Sequence[int], fixes: int) -> list[StepResult]:
    """Step the rate up until the ingest (or the publisher) falls behind."""
    steps: list[StepResult] = []
    for rate in rates:
        say(bench, f"ingest ladder, {fixes}-fix messages: {rate} msg/s for {bench.plan.step_s:g} s")
        steps.append(await ingest_step(bench, "ladder", rate, bench.plan.step_s, fixes))
        say(bench, "  " + format_step(steps[-1]))
        if steps[-1].verdict != "ok":
            break
    return steps


def best_rate(steps: Sequence[StepResult], fallback: int) -> int:
    passed = [s.target_msg_s for s in steps if s.verdict == "ok"]
    return max(passed) if passed else fallback


async def sustained(
    bench: Bench, scenario: str, rate: int, fixes: int, duration_s: float
) -> StepResult:
    say(bench, f"{scenario}: {rate} msg/s x {fixes} fix(es) for {duration_s:g} s ...")
    result = await ingest_step(bench, scenario, rate, duration_s, fixes)
    say(bench, "  " + format_step(result))
    return result


async def sustained_at_best(
    bench: Bench, scenario: str, steps: Sequence[StepResult], fixes: int, duration_s: float
) -> StepResult:
    """The long run at the best ladder rate; if it cannot hold that rate for the whole
    duration, once more at the next lower rate that passed."""
    passed = sorted((s.target_msg_s for s in steps if s.verdict == "ok"), reverse=True)
    rates = passed[:2] or [steps[0].target_msg_s]
    result = await sustained(bench, scenario, rates[0], fixes, duration_s)
    if result.verdict != "ok" and len(rates) > 1:
        say(bench, f"  {rates[0]} msg/s did not hold for {duration_s:g} s; one step lower")
        result = await sustained(bench, scenario, rates[1], fixes, duration_s)
    return result


async def profile_ingest(
    bench: Bench, ingest: IngestProcess, rate: int, fixes: int
) -> dict[str, Profile]:
    """py-spy (sampling, non-blocking) on the ingest, and on the embedded broker, while
    publishing ``fixes``-fix messages at ``rate`` msg/s."""
    spy = py_spy()
    if spy is None:
        say(bench, "py-spy not found (pip install py-spy): no profile")
        return {}
    load = f"{fixes}-fix messages at {rate} msg/s"
    targets = {f"ingest, {load}": ingest.process.pid}
    if bench.endpoint.name == "embedded" and bench.endpoint.broker_pid:
        targets[f"amqtt broker, {load}"] = bench.endpoint.broker_pid
    duration_s = bench.plan.profile_s
    say(bench, f"profiling with py-spy for {duration_s:g} s: {', '.join(targets)}")
    outputs = {
        name: bench.work_dir / f"py-spy-{bench.endpoint.name}-{pid}-{fixes}fix.txt"
        for name, pid in targets.items()
    }
    spies = [
        await start_py_spy(spy, pid, duration_s + 1, outputs[name]) for name, pid in targets.items()
    ]
    await ingest_step(bench, "profile", rate, duration_s, fixes)
    for process in spies:
        await process.wait()
    return {name: profile_of(p.read_text()) for name, p in outputs.items() if p.exists()}


async def start_py_spy(
    spy: str, pid: int, duration_s: float, output: Path
) -> asyncio.subprocess.Process:
    # Not --nonblocking: reading a running interpreter's frames races, and the torn
    # stacks blame the wrong functions (measured); a pause per sample costs ~1 %.
    # --gil: only the thread running Python code, so idle waits (epoll, executor
    # threads) are not counted as work.
    return await asyncio.create_subprocess_exec(
        spy,
        *("record", "--pid", str(pid), "--duration", str(int(duration_s)), "--rate", "100"),
        *("--gil", "--nolineno", "--format", "raw", "--output", str(output)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def open_for_writing(path: Path) -> IO[bytes]:
    return path.open("wb")


SANITRACK_PACKAGES = ("ingest", "storage", "broker", "fleet", "sanitrack", "api")


def profile_of(raw: str, limit: int = 15) -> Profile:
    """Own and cumulative share of samples per function, from py-spy's raw (collapsed) stacks."""
    own: collections.Counter[str] = collections.Counter()
    cumulative: collections.Counter[str] = collections.Counter()
    packages: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [short_frame(frame) for frame in stack.split(";")]
        total += int(count)
        own[frames[-1]] += int(count)
        packages[package_of(frames[-1])] += int(count)
        for frame in set(frames):
            cumulative[frame] += int(count)
    total = max(total, 1)

    def share(name: str) -> ProfileLine:
        return ProfileLine(name, 100 * own[name] / total, 100 * cumulative[name] / total)

    # Entry frames (cli.main, the event loop) are in nearly every sample: left out.
    ours = [
        name
        for name, n in cumulative.items()
        if package_of(name) in SANITRACK_PACKAGES and n < 0.8 * total
    ]
    ours.sort(key=lambda name: -cumulative[name])
    return Profile(
        samples=total,
        by_package={name: 100 * n / total for name, n in packages.most_common(10)},
        top_own=[share(name) for name, _ in own.most_common(limit)],
        top_cumulative_sanitrack=[share(name) for name in ours[:limit]],
    )


def package_of(frame: str) -> str:
    """'IngestService.handle (ingest/service.py)' -> 'ingest'."""
    file = frame.rpartition("(")[2].rstrip(")")
    if file.startswith("<string>"):
        return "dataclass-generated"
    return file.split("/")[0].removesuffix(".py")


def short_frame(frame: str) -> str:
    for prefix in (str(REPO) + "/", "site-packages/", "/lib/python3"):
        head, sep, tail = frame.partition(prefix)
        if sep:
            frame = head + tail
    return frame


# ---------------------------------------------------------------- the bare COPY ceiling


def synthetic_rows(ids: Sequence[tuple[int, int]], count: int) -> list[PositionRow]:
    """Rows shaped like the ingest's (storage.POSITION_COLUMNS), an hour ago, unique keys."""
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    rows: list[PositionRow] = []
    for n in range(count):
        device_id, tenant_id = ids[n % len(ids)]
        at = start + dt.timedelta(microseconds=n)
        rows.append(
            (
                device_id,
                at,
                tenant_id,
                at,
                20.97,
                105.77,
                23.4,
                181.0,
                5.0,
                None,
                9,
                n,
                True,
                87,
                None,
                "native",
            )
        )
    return rows


async def bare_copy(conn: psycopg.AsyncConnection[Any], rows: Sequence[PositionRow]) -> int:
    columns = sql.SQL(", ").join(map(sql.Identifier, POSITION_COLUMNS))
    async with conn.cursor().copy(
        sql.SQL("COPY positions ({}) FROM STDIN").format(columns)
    ) as copy:
        for row in rows:
            await copy.write_row(row)
    return len(rows)


async def timed_batches(
    conn: psycopg.AsyncConnection[Any],
    rows: Sequence[PositionRow],
    write: Callable[[psycopg.AsyncConnection[Any], Sequence[PositionRow]], Any],
) -> float:
    await empty_tables(conn)
    await conn.commit()
    started = time.perf_counter()
    for start in range(0, len(rows), COPY_BATCH_ROWS):
        async with conn.transaction():
            await write(conn, rows[start : start + COPY_BATCH_ROWS])
    rate = len(rows) / (time.perf_counter() - started)
    await empty_tables(conn)
    await conn.commit()
    return rate


async def copy_ceiling(url: str, ids: Sequence[tuple[int, int]], count: int) -> CopyCeiling:
    rows = synthetic_rows(ids, count)
    async with await psycopg.AsyncConnection.connect(url) as conn:
        bare = await timed_batches(conn, rows, bare_copy)
        staged = await timed_batches(conn, rows, staged_write)
    return CopyCeiling(count, bare, staged)


# ---------------------------------------------------------------- output


def format_usage(usage: dict[str, Usage]) -> str:
    return " | ".join(f"{group} {u}" for group, u in usage.items() if u.cpu_percent > 0)


def format_step(step: StepResult) -> str:
    latency = (
        f"p50 {step.latency.p50_ms:5.0f} ms p99 {step.latency.p99_ms:5.0f} ms"
        if step.latency
        else "no rows"
    )
    letters = f" dead letters {step.dead_letters}" if step.dead_letters else ""
    # CPU no measured process accounts for: another workload disturbing the figures.
    others = max(0.0, step.machine_cpu_percent - sum(u.cpu_percent for u in step.usage.values()))
    return (
        f"{step.scenario}: offered {step.target_msg_s} msg/s (achieved {step.offered_msg_s:.0f})"
        f" | accepted {step.accepted_msg_s:.0f} msg/s {step.accepted_fixes_s:.0f} fixes/s"
        f" | loss {step.loss_fixes}{letters} | {latency} | {format_usage(step.usage)}"
        f" | machine {step.machine_cpu_percent:.0f}%/200% (other processes {others:.0f}%)"
        f" | {step.verdict}"
    )


def format_ceiling(step: CeilingStep) -> str:
    return (
        f"offered {step.target_msg_s} msg/s (achieved {step.offered_msg_s:.0f})"
        f" | received {step.received_msg_s:.0f} msg/s | lost {step.lost_msg}"
        f" | subscriber {step.subscriber} | {step.verdict}"
    )


def print_profile(broker: str, profiles: dict[str, Profile]) -> None:
    for process, profile in profiles.items():
        print(f"\n[{broker}] profile: {process} ({profile.samples} py-spy samples, 100 Hz)")
        packages = ", ".join(f"{name} {share:.0f}%" for name, share in profile.by_package.items())
        print(f"  own time by package: {packages}")
        print("  (samples of the thread holding the GIL; GC time shows in the allocating frame)")
        for title, lines in (
            ("top 15 functions by own time", profile.top_own),
            ("top 15 Sanitrack functions by cumulative time", profile.top_cumulative_sanitrack),
        ):
            print(f"  {title}:\n  {'own%':>6} {'cum%':>6}  function (file)")
            for line in lines:
                print(f"  {line.own_percent:6.1f} {line.cumulative_percent:6.1f}  {line.function}")


# ---------------------------------------------------------------- one broker, start to end


async def run_broker(bench: Bench, copy: CopyCeiling) -> dict[str, Any]:
    ceiling = await subscriber_ceiling(bench)
    async with ingest_process(bench.database_url, bench.endpoint, bench.work_dir) as ingest:
        bench.sampler.watch("ingest", ingest.process.pid)
        bench.sampler.watch("broker", bench.endpoint.broker_pid)
        plan = bench.plan
        single = await ladder(bench, plan.single_rates_msg_s, 1)
        scenario_1 = await sustained_at_best(
            bench, "1 single-fix sustained", single, 1, plan.sustained_s
        )
        batches = await ladder(bench, plan.batch_rates_msg_s, 10)
        scenario_2 = await sustained_at_best(
            bench, "2 10-fix batches", batches, 10, plan.sustained_s / 2
        )
        half = max(1, scenario_1.target_msg_s // 2)
        scenario_3 = await sustained(bench, "3 latency at half max", half, 1, plan.sustained_s / 2)
        profiles = await profile_ingest(bench, ingest, scenario_1.target_msg_s, 1)
        profiles |= await profile_ingest(bench, ingest, scenario_2.target_msg_s, 10)
        metrics = await asyncio.to_thread(ingest.metrics)
    scenarios = (scenario_1, scenario_2, scenario_3)
    summary = summarize(ceiling, scenarios, copy)
    print_results(bench.endpoint.name, scenarios, summary)
    print_profile(bench.endpoint.name, profiles)
    return {
        "broker": bench.endpoint.name,
        "bare_subscriber_steps": [dataclasses.asdict(s) for s in ceiling],
        "single_ladder": [dataclasses.asdict(s) for s in single],
        "batch_ladder": [dataclasses.asdict(s) for s in batches],
        "scenarios": [dataclasses.asdict(s) for s in scenarios],
        "summary": summary,
        "profiles": {name: dataclasses.asdict(p) for name, p in profiles.items()},
        "ingest_metrics_at_end": metrics,
    }


def summarize(
    ceiling: Sequence[CeilingStep], scenarios: Sequence[StepResult], copy: CopyCeiling
) -> dict[str, Any]:
    single, batches, latency = scenarios
    bare_ok = [s for s in ceiling if s.verdict == "ok"]
    bare_max = max((s.received_msg_s for s in bare_ok), default=0.0)
    held = single.verdict == "ok"
    return {
        # ">=": the bare subscriber never fell behind, so its ceiling is above the ladder
        "bare_subscriber_max_msg_s": bare_max,
        "bare_subscriber_bound": "=" if len(bare_ok) < len(ceiling) else ">=",
        "ingest_vs_bare_subscriber": single.accepted_msg_s / bare_max if bare_max else 0.0,
        "single_vs_bare_copy": single.accepted_fixes_s / copy.bare_copy_rows_s,
        "batches_vs_bare_copy": batches.accepted_fixes_s / copy.bare_copy_rows_s,
        "bare_copy_rows_s": copy.bare_copy_rows_s,
        "targets": {
            ">= 8000 single-fix msg/s for the whole run, no loss": held
            and single.accepted_msg_s >= 8000 * 0.98,
            ">= 40000 fixes/s in 10-fix batches": batches.verdict == "ok"
            and batches.accepted_fixes_s >= 40_000 * 0.98,
            "p99 <= 500 ms at half the max rate": latency.latency is not None
            and latency.latency.p99_ms <= 500,
            ">= 0.6 of the bare subscriber": bare_max > 0
            and single.accepted_msg_s >= 0.6 * bare_max,
        },
    }


def print_results(broker: str, scenarios: Sequence[StepResult], summary: dict[str, Any]) -> None:
    print(f"\n[{broker}] RESULTS")
    for step in scenarios:
        print("  " + format_step(step))
    print(
        f"  ceilings: bare aiomqtt subscriber {summary['bare_subscriber_bound']}"
        f" {summary['bare_subscriber_max_msg_s']:.0f} msg/s -> single-fix ingest at"
        f" {summary['ingest_vs_bare_subscriber']:.2f} of it; bare COPY into positions"
        f" {summary['bare_copy_rows_s']:.0f} rows/s -> ingest at"
        f" {summary['batches_vs_bare_copy']:.2f} of it with 10-fix batches,"
        f" {summary['single_vs_bare_copy']:.2f} with single fixes"
    )
    # Rates are accepted rows over (last commit - first publish): a 1-2 % allowance.
    for target, met in summary["targets"].items():
        print(f"  target {target}: {'met' if met else 'MISSED'}")


@contextlib.asynccontextmanager
async def broker_endpoint(name: str, database_url: str) -> AsyncIterator[Endpoint]:
    if name == "mosquitto":
        async with mosquitto() as endpoint:
            yield endpoint
    else:
        async with embedded_broker_process(database_url) as endpoint:
            yield endpoint


async def run(args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    brokers = ["mosquitto", "embedded"] if args.broker == "both" else [args.broker]
    if "mosquitto" in brokers and not mosquitto_reachable():
        print("Mosquitto is not reachable on 127.0.0.1:1883: skipped", flush=True)
        brokers.remove("mosquitto")
    report: dict[str, Any] = {"machine_cpus": psutil.cpu_count(), "brokers": []}
    warn_about_neighbours()
    async with bench_database() as url, background() as tasks:
        database = url.rsplit("/", 1)[1]
        print(f"database {database}; registering {PUBLISHER_CONNECTIONS} devices", flush=True)
        logins, ids = await register_devices(url, PUBLISHER_CONNECTIONS)
        copy = await measure_copy(url, ids, 20_000 if args.quick else 200_000)
        report["copy_ceiling"] = dataclasses.asdict(copy)
        probe, sampler = CommitProbe(url), ResourceSampler(database)
        sampler.watch("bench", os.getpid())
        tasks.start(probe.run(), name="commit probe")
        tasks.start(sampler.run(), name="resource sampler")
        for name in brokers:
            async with (
                broker_endpoint(name, url) as endpoint,
                await psycopg.AsyncConnection.connect(url, autocommit=True) as conn,
            ):
                plan = plan_for(name, args)
                bench = Bench(
                    url, database, endpoint, tuple(logins), conn, probe, sampler, plan, work_dir
                )
                report["brokers"].append(await run_broker(bench, copy))
    return report


def warn_about_neighbours() -> None:
    """Another ingest or benchmark on this 2-core machine (or on the shared Mosquitto)
    would take CPU and broker time from the one measured here."""
    ours = {os.getpid(), *(parent.pid for parent in psutil.Process().parents())}
    others = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or ())
        if process.pid not in ours and ("sanitrack.cli" in cmdline or "bench.ingest" in cmdline):
            others.append(f"{process.pid}: {cmdline[:80]}")
    for other in others:
        print(f"WARNING: also running, figures will be disturbed: {other}", flush=True)


def plan_for(broker: str, args: argparse.Namespace) -> Plan:
    if args.quick:
        return PLANS[broker].quick(args.duration_s or 5.0)
    return dataclasses.replace(PLANS[broker], sustained_s=args.duration_s or 60.0)


async def measure_copy(url: str, ids: Sequence[tuple[int, int]], rows: int) -> CopyCeiling:
    print(f"bare COPY ceiling: {rows} rows in batches of {COPY_BATCH_ROWS} ...", flush=True)
    copy = await copy_ceiling(url, ids, rows)
    print(
        f"  bare COPY into positions {copy.bare_copy_rows_s:.0f} rows/s;"
        f" storage.write_positions (staged) {copy.staged_rows_s:.0f} rows/s",
        flush=True,
    )
    return copy


class BackgroundTasks:
    """Tasks that run until the benchmark ends (then they are cancelled)."""

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, work: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.create_task(work, name=name))

    async def cancel_all(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@contextlib.asynccontextmanager
async def background() -> AsyncIterator[BackgroundTasks]:
    tasks = BackgroundTasks()
    try:
        yield tasks
    finally:
        await tasks.cancel_all()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--duration-s", type=float, default=None, help="sustained runs (default 60; --quick 5)"
    )
    parser.add_argument("--broker", choices=["mosquitto", "embedded", "both"], default="both")
    parser.add_argument("--quick", action="store_true", help="short steps: a smoke run")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    with work_directory(args.out) as work_dir:
        report = asyncio.run(run(args, work_dir))
    print(f"\ntotal time {time.monotonic() - started:.0f} s")
    if args.quick:
        print("quick run: two short ladder steps, so 'MISSED' targets say nothing here")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2, default=str))
        print(f"wrote {args.out} (ingest logs and raw py-spy stacks in {work_dir})")
    return 0


@contextlib.contextmanager
def work_directory(out: Path | None) -> Iterator[Path]:
    """Ingest logs and raw py-spy stacks: kept beside --out, else in a temporary directory."""
    if out is None:
        with tempfile.TemporaryDirectory(prefix="sanitrack-bench-") as work:
            yield Path(work)
        return
    kept = out.with_name(out.stem + "-files")
    kept.mkdir(parents=True, exist_ok=True)
    yield kept


def run_as_module() -> None:
    """`python bench/ingest.py` would make this file shadow the ``ingest`` package
    (which the ingest subprocess and spawned workers import): run it as a module instead."""
    os.chdir(REPO)
    os.execv(sys.executable, [sys.executable, "-m", "bench.ingest", *sys.argv[1:]])


if __name__ == "__main__":
    if not __package__:
        run_as_module()
    sys.exit(main())
