"""Alert delivery under load: from the fix that opens a wrong_route alert to the dispatcher's
WebSocket and the driver's phone topic, while the ingest carries a simulated city.

Run from the repository root (it prints figures; it is not a pass/fail test):

    .venv/bin/python -m bench.alerts [--devices 25000] [--cycles 200] [--quick]
                                     [--pause-s 0] [--machine-mosquitto]

In a fresh database ``sanitrack_bench_<random>``, through a Mosquitto of its own on a free
port with the deployment's queue limits (``deploy/mosquitto/mosquitto.conf``: a lagging
ingest's messages wait in the broker; the machine's Mosquitto, ``--machine-mosquitto``,
keeps 1,000 a session and drops the rest):

1. The background: a simulator scenario of --devices devices, built and registered as
   bench/load.py does (80 % trucks, 20 % phones, 5 s interval, no route runs registered),
   played in real time by a simulator process for as long as the probe runs. 25,000 devices
   is half the ingest's measured maximum (50,000 devices at 5 s on Mosquitto).
2. The probe tenant ``bench-probe``: one truck with its device, its driver, and a route run
   on all day along a straight 20 km street (corridor 50 m) with the driver in its crew.
3. ``sanitrack ingest`` (ingest, rules engine, live feed) in its own process.
4. The probe, in this process: a WebSocket client on /ws/live subscribed to alerts, an MQTT
   subscriber on the driver's alert topic, and the truck's MQTT client. Each cycle the truck
   leaves the street (150 m off it) for 7 fixes, 5 s apart in fix time (30 s, what
   wrong_route needs) but sent 50 ms apart, then comes back for 5 fixes (20 s: resolved).
   Fix times start hours back and stay in the past. The latency of a path is from just
   before publishing the 7th off-route fix to the moment its ``opened`` change arrives;
   changes are matched to their cycle by ``opened_at`` (the excursion's first fix time).

Where the time goes: this process also LISTENs to the alerts' NOTIFY channel, which fires
when the rules writer's transaction commits, and reads each alert's ``created_at`` (the
writer transaction's start) afterwards. So each delivery splits into publish -> writer
transaction, the transaction, and commit -> WebSocket / staff topic.

Caveat: the probe's fixes are hours old by the wall clock, so the clock sweep finds the
probe truck offline about once a minute and its next fix resolves that; those ``offline``
changes are counted apart.

--pause-s spreads the
cycles out: the default probe lasts about two minutes, which sees the ingest's periodic
event-loop stalls (collections of the older GC generation, the rules' 30 s reload) only a
few times each.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import multiprocessing.process
import multiprocessing.queues
import multiprocessing.synchronize
import os
import queue
import secrets
import statistics
import sys
import tempfile
import time
import urllib.request
import zoneinfo
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import psycopg
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

import alerts
import customers
import fleet
import planning
from bench.children import SPAWN, child
from bench.ingest import (
    Endpoint,
    IngestProcess,
    ResourceSampler,
    bench_database,
    ingest_process,
    mosquitto,
    mosquitto_reachable,
    own_mosquitto,
    warn_about_neighbours,
)
from bench.load import INTERVAL_S, Job, Played, forget_retained_status, scenario_config
from geo import LocalProjection
from simulator import ScenarioConfig, TruthLog, build_scenario, play
from simulator.register import register_scenario
from storage import open_pool

PROBE_TENANT = "bench-probe"
VIETNAM = zoneinfo.ZoneInfo("Asia/Ho_Chi_Minh")
STREET_ORIGIN = (20.97, 105.78)
STREET_M = 20_000.0
USABLE_M = STREET_M - 500.0  # the run ends near the street's far end
CORRIDOR_M = 50.0
OFF_ROUTE_M = 150.0
FIX_INTERVAL_S = 5.0
SEND_GAP_S = 0.05
LEAD_FIXES = 3
OFF_FIXES = 7  # 30 s at 5 s: min_off_route_s
BACK_FIXES = 5  # 20 s back inside: resolve_s
MAX_STEP_M = 40.0
MIN_STEP_M = 7.0  # 5 km/h; slower, the tracker takes the truck for standing still
WARM_UP_CYCLES = 1  # the first alert meets cold paths; not counted
DELIVERY_TIMEOUT_S = 10.0
TARGET_P99_MS = 250.0
MEASURED_MAX_DEVICES = 50_000  # bench/load.py on Mosquitto, 5 s interval
PATHS = ("websocket", "staff")


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the probe's world


@dataclass(frozen=True, slots=True)
class Probe:
    tenant_id: int
    username: str
    secret: str
    topic: str
    driver_id: int

    @property
    def staff_topic(self) -> str:
        return alerts.staff_topic(PROBE_TENANT, self.driver_id)


@dataclass(frozen=True, slots=True)
class Street:
    """The probe's street along x (y = 0), and how far the truck moves per fix."""

    projection: LocalProjection
    step_m: float

    @property
    def speed_kmh(self) -> float:
        return self.step_m / FIX_INTERVAL_S * 3.6

    def latlon(self, x: float, y: float) -> tuple[float, float]:
        return self.projection.to_latlon(x, y)

    def fix(self, at: dt.datetime, x: float, y: float) -> bytes:
        lat, lon = self.latlon(x, y)
        return orjson.dumps(
            {
                "ts": round(at.timestamp() * 1000),
                "lat": lat,
                "lon": lon,
                "speed_kmh": round(self.speed_kmh, 2),
                "heading_deg": 90.0,
                "accuracy_m": 5.0,
                "sats": 9,
                "ignition": True,
            }
        )


async def register_probe(url: str, street: Street, fix_start: dt.datetime) -> Probe:
    now = dt.datetime.now(dt.UTC)
    far_lat, far_lon = street.latlon(STREET_M, 0.0)
    point_lat, point_lon = street.latlon(STREET_M, 10.0)
    async with await psycopg.AsyncConnection.connect(url) as conn:
        tenant = await fleet.ensure_tenant(conn, PROBE_TENANT, "Benchmark probe")
        vehicle_id = await fleet.create_vehicle(conn, tenant.id, "29C-00001", "Xe đo độ trễ")
        driver_id = await fleet.create_staff(
            conn, tenant.id, "LX-1", "Tài xế đo", fleet.StaffRole.DRIVER
        )
        created = await fleet.create_device(
            conn, tenant, "probe-truck", fleet.DeviceKind.TRUCK, vehicle_id=vehicle_id
        )
        point_ids = await customers.ensure_service_points(
            conn,
            tenant.id,
            [
                customers.NewServicePoint(
                    code="KH-PROBE",
                    name="Cuối phố đo",
                    kind=customers.CustomerKind.HOUSEHOLD,
                    lat=point_lat,
                    lon=point_lon,
                    position_source=customers.PositionSource.SIMULATED,
                )
            ],
        )
        path = tuple(
            (lon, lat)
            for lat, lon in (street.latlon(x, 0.0) for x in range(0, int(STREET_M) + 1, 1000))
        )
        run = planning.NewRouteRun(
            vehicle_id=vehicle_id,
            local_date=now.astimezone(VIETNAM).date(),
            name="Tuyến đo độ trễ",
            planned_start=fix_start - dt.timedelta(minutes=10),
            planned_end=now + dt.timedelta(hours=12),
            corridor_m=CORRIDOR_M,
            expected_path=path,
            path_length_m=STREET_M,
            source=planning.RunSource.MANUAL,
            stops=(
                planning.RouteStop(
                    seq=1,
                    kind=planning.StopKind.COLLECT,
                    service_point_id=point_ids["KH-PROBE"],
                    lat=far_lat,
                    lon=far_lon,
                    path_offset_m=STREET_M,
                    planned_arrival=now + dt.timedelta(hours=11),
                    dwell_radius_m=30.0,
                ),
            ),
            crew=(planning.CrewMember(staff_id=driver_id, role=planning.CrewRole.DRIVER),),
        )
        await planning.create_route_run(conn, tenant.id, run)
        await conn.commit()
    topic = f"sanitrack/{PROBE_TENANT}/dev/{created.device.slug}/pos"
    return Probe(tenant.id, created.username, created.secret, topic, driver_id)


# ---------------------------------------------------------------- the background load


@dataclass(frozen=True, slots=True)
class Background:
    config: dict[str, Any]
    secrets: dict[str, str]
    status_topics: list[str]


async def register_background(url: str, devices: int) -> Background:
    """The scenario as bench/load.py registers it (no route runs)."""
    config = scenario_config(devices, f"alerts-load-{os.getpid() % 100_000}")
    scenario = build_scenario(ScenarioConfig(**config), dt.datetime.now(dt.UTC), 60.0)
    async with open_pool(url, min_size=1, max_size=2) as pool:
        registered = await register_scenario(
            pool, scenario, route_runs=False, progress=lambda text: say(f"    {text}")
        )
    return Background(config, registered.secrets, [s.status_topic for s in scenario.scripts])


def simulator_worker(
    job: Job,
    playing: multiprocessing.synchronize.Event,
    stop: multiprocessing.synchronize.Event,
    results: multiprocessing.queues.Queue[Played],
) -> None:
    """Process entry: play the scenario in real time until ``stop`` (or its end)."""
    try:
        results.put(asyncio.run(_play(job, playing, stop)))
    except Exception as exc:
        results.put(Played(0, 0, 0, 0, 0.0, 0.0, error=repr(exc)))


async def _play(
    job: Job, playing: multiprocessing.synchronize.Event, stop: multiprocessing.synchronize.Event
) -> Played:
    scenario = build_scenario(ScenarioConfig(**job.config), dt.datetime.now(dt.UTC), job.duration_s)
    stopping = asyncio.Event()
    lines = 0

    def progress(text: str) -> None:
        nonlocal lines
        if text.startswith("sim "):  # progress lines come only while playing
            playing.set()
            lines += 1
            if lines % 15 != 1:
                return
        say(f"    simulator: {text}")

    async def watch_stop() -> None:
        await asyncio.to_thread(stop.wait)
        stopping.set()

    watcher = asyncio.create_task(watch_stop(), name="stop watcher")
    try:
        stats = await play(
            scenario,
            job.secrets,
            job.host,
            job.port,
            TruthLog(scenario.start),
            speedup=job.speedup,
            say=progress,
            progress_s=2.0,
            stop=stopping,
            max_sessions=job.max_sessions,
            live_start=True,
        )
    finally:
        stop.set()  # ends the watcher's thread
        await watcher
    return Played(
        stats.played,
        stats.position_messages,
        stats.acked,
        len(stats.sessions),
        stats.wall_s,
        stats.began_epoch_s,
    )


@dataclass(slots=True)
class Simulator:
    process: multiprocessing.process.BaseProcess
    playing: multiprocessing.synchronize.Event
    stop: multiprocessing.synchronize.Event
    results: multiprocessing.queues.Queue[Played]
    played: Played | None = None

    async def wait_playing(self, timeout_s: float) -> None:
        deadline_s = time.monotonic() + timeout_s
        while not await asyncio.to_thread(self.playing.wait, 1.0):
            if not self.process.is_alive():
                raise RuntimeError(f"the simulator stopped: {self._result().error}")
            if time.monotonic() > deadline_s:
                raise RuntimeError(f"the simulator was not playing within {timeout_s:.0f} s")

    async def finish(self) -> Played:
        self.stop.set()
        if self.played is None:
            self.played = await asyncio.to_thread(self._result)
        return self.played

    def _result(self) -> Played:
        deadline_s = time.monotonic() + 120
        while time.monotonic() < deadline_s:
            with contextlib.suppress(queue.Empty):
                return self.results.get(timeout=1.0)
            if not self.process.is_alive():
                break
        code = self.process.exitcode
        return Played(0, 0, 0, 0, 0.0, 0.0, error=f"no report (exit code {code})")


@contextlib.asynccontextmanager
async def background_simulator(job: Job, sampler: ResourceSampler) -> AsyncIterator[Simulator]:
    playing, stop = SPAWN.Event(), SPAWN.Event()
    results: multiprocessing.queues.Queue[Played] = SPAWN.Queue()
    process = child(simulator_worker, (job, playing, stop, results), "simulator")
    process.start()
    sampler.watch("simulator", process.pid)
    simulator = Simulator(process, playing, stop, results)
    try:
        yield simulator
    finally:
        await simulator.finish()
        await asyncio.to_thread(process.join, 30)
        if process.is_alive():
            process.kill()
            process.join()


# ---------------------------------------------------------------- the ingest


def ingest_with_live_feed(
    url: str, endpoint: Endpoint, token: str, log_dir: Path
) -> contextlib.AbstractAsyncContextManager[IngestProcess]:
    """``sanitrack ingest`` as bench.ingest starts it, with a live-feed token."""
    return ingest_process(
        url,
        endpoint,
        log_dir,
        extra_env={"SANITRACK_LIVE_TOKENS": orjson.dumps({token: PROBE_TENANT}).decode()},
        log_name=f"{url.rsplit('/', 1)[1]}-ingest.log",
    )


def fetch_metrics(port: int, prefixes: tuple[str, ...]) -> dict[str, float]:
    """/metrics samples whose names start with ``prefixes``, keyed by name and labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    values = {}
    for line in text.splitlines():
        if line.startswith(prefixes):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


async def rules_metrics(ingest: IngestProcess) -> dict[str, float]:
    return await asyncio.to_thread(fetch_metrics, ingest.http_port, ("sanitrack_rules_",))


# ---------------------------------------------------------------- what arrives where


@dataclass(slots=True)
class Deliveries:
    """First arrival (monotonic s) of each (path, alert id, change) for the probe tenant's
    wrong_route alerts; ``commit`` is the NOTIFY this process hears at the commit."""

    arrivals: dict[tuple[str, int, str], float] = field(default_factory=dict)
    opened: dict[dt.datetime, int] = field(default_factory=dict)  # opened_at -> alert id
    others: Counter[str] = field(default_factory=Counter)  # other kinds, by path and kind
    snapshots: int = 0
    lost: dict[str, str] = field(default_factory=dict)  # a path that ended, and why
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def alert(self, path: str, alert: dict[str, Any], change: str, at_s: float) -> None:
        if alert.get("kind") != "wrong_route":
            self.others[f"{path} {alert.get('kind')}"] += 1
            return
        alert_id = int(alert["id"])
        self.arrivals.setdefault((path, alert_id, change), at_s)
        if change == "opened":
            self.opened.setdefault(dt.datetime.fromisoformat(alert["opened_at"]), alert_id)
        self.changed.set()

    def commit(self, alert_id: int, change: str, at_s: float) -> None:
        self.arrivals.setdefault(("commit", alert_id, change), at_s)
        self.changed.set()

    def at(self, path: str, alert_id: int | None, change: str = "opened") -> float | None:
        return None if alert_id is None else self.arrivals.get((path, alert_id, change))

    def waiting_for(self, alert_id: int | None, change: str = "opened") -> bool:
        """A path still open has not delivered this change of this alert yet."""
        return any(
            path not in self.lost and self.at(path, alert_id, change) is None for path in PATHS
        )

    async def until(self, done: Callable[[], bool], timeout_s: float) -> bool:
        deadline_s = time.monotonic() + timeout_s
        while not done():
            remaining_s = deadline_s - time.monotonic()
            if remaining_s <= 0:
                return False
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining_s)
        return True


async def read_websocket(websocket: ClientConnection, deliveries: Deliveries) -> None:
    """Until the server closes the feed: then the path is lost (the probe goes on)."""
    try:
        async for message in websocket:
            at_s = time.monotonic()
            data = orjson.loads(message)
            if data["type"] == "alert":
                deliveries.alert("websocket", data["alert"], data["change"], at_s)
            elif data["type"] == "snapshot":
                deliveries.snapshots += 1
                deliveries.changed.set()
            elif data["type"] == "error":
                deliveries.lost["websocket"] = f"the feed refused the subscription: {data}"
                return
    except ConnectionClosed as closed:
        deliveries.lost["websocket"] = f"closed by the server: {closed}"
    finally:
        deliveries.changed.set()


async def read_staff_topic(client: aiomqtt.Client, deliveries: Deliveries) -> None:
    async for message in client.messages:
        at_s = time.monotonic()
        payload = message.payload
        if isinstance(payload, bytes | bytearray | str):
            data = orjson.loads(payload)
            deliveries.alert("staff", data, data["change"], at_s)


async def read_commits(
    conn: psycopg.AsyncConnection[Any], tenant_id: int, deliveries: Deliveries
) -> None:
    async for notification in conn.notifies():
        at_s = time.monotonic()
        data = orjson.loads(notification.payload)
        if data["tenant_id"] == tenant_id:
            deliveries.commit(int(data["id"]), data["change"], at_s)


# ---------------------------------------------------------------- the probe cycles


@dataclass(slots=True)
class Cycle:
    number: int  # 0 .. WARM_UP_CYCLES - 1 are the warm-up
    off_since: dt.datetime  # fix time of the excursion's first fix: the alert's opened_at
    published_s: float  # monotonic, just before the fix that opens the alert
    published_epoch_s: float
    alert_id: int | None = None
    resolve_published_s: float | None = None


class Truck:
    """The probe truck's fixes: along the street, fix time 5 s apart, sent 50 ms apart."""

    def __init__(self, client: aiomqtt.Client, probe: Probe, street: Street, start: dt.datetime):
        self._client = client
        self._probe = probe
        self._street = street
        self.t = start
        self.x = 0.0

    async def drive(self, fixes: int, y: float, before_last: Callable[[], None] | None) -> None:
        for n in range(fixes):
            payload = self._street.fix(self.t, self.x, y)
            self.t += dt.timedelta(seconds=FIX_INTERVAL_S)
            self.x += self._street.step_m
            if n == fixes - 1 and before_last is not None:
                before_last()
            await self._client.publish(self._probe.topic, payload, qos=1)
            await asyncio.sleep(SEND_GAP_S)


async def probe_cycles(
    truck: Truck, cycles: int, pause_s: float, deliveries: Deliveries
) -> list[Cycle]:
    done: list[Cycle] = []
    progress_every = max(1, cycles // 10)
    await truck.drive(LEAD_FIXES, 0.0, None)
    for number in range(WARM_UP_CYCLES + cycles):
        if number:
            await asyncio.sleep(pause_s)
        cycle = await excursion(truck, number, deliveries)
        done.append(cycle)
        counted = number + 1 - WARM_UP_CYCLES
        if counted > 0 and (counted % progress_every == 0 or counted == cycles):
            say(f"  cycle {counted}/{cycles}: {latest(deliveries, cycle)}")
    return done


async def excursion(truck: Truck, number: int, deliveries: Deliveries) -> Cycle:
    """Off the street until the alert opens, its deliveries, back until it resolves."""
    moments: list[float] = []
    off_since = truck.t
    await truck.drive(
        OFF_FIXES, OFF_ROUTE_M, lambda: moments.extend((time.monotonic(), time.time()))
    )
    cycle = Cycle(number, off_since, moments[0], moments[1])

    def delivered() -> bool:
        cycle.alert_id = deliveries.opened.get(cycle.off_since)
        return not deliveries.waiting_for(cycle.alert_id)

    def resolved() -> bool:
        return not deliveries.waiting_for(cycle.alert_id, "resolved")

    def resolving() -> None:
        cycle.resolve_published_s = time.monotonic()

    await deliveries.until(delivered, DELIVERY_TIMEOUT_S)
    await truck.drive(BACK_FIXES, 0.0, resolving)
    if cycle.alert_id is not None:  # the next excursion starts after this one resolved
        await deliveries.until(resolved, DELIVERY_TIMEOUT_S)
    return cycle


def latest(deliveries: Deliveries, cycle: Cycle) -> str:
    parts = []
    for path in PATHS:
        arrived = deliveries.at(path, cycle.alert_id)
        shown = "missing" if arrived is None else f"{(arrived - cycle.published_s) * 1000:.0f} ms"
        parts.append(f"{path} {shown}")
    return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class ProbeRun:
    cycles: list[Cycle]
    deliveries: Deliveries
    started_epoch_s: float
    ended_epoch_s: float


async def run_probe(
    url: str,
    endpoint: Endpoint,
    probe: Probe,
    street: Street,
    fix_start: dt.datetime,
    port: int,
    token: str,
    cycles: int,
    pause_s: float,
) -> ProbeRun:
    deliveries = Deliveries()
    async with contextlib.AsyncExitStack() as stack:
        listening = await stack.enter_async_context(
            await psycopg.AsyncConnection.connect(url, autocommit=True)
        )
        await listening.execute(f"LISTEN {alerts.CHANNEL}")
        websocket = await stack.enter_async_context(
            connect(f"ws://127.0.0.1:{port}/ws/live?token={token}")
        )
        staff = await stack.enter_async_context(
            aiomqtt.Client(
                endpoint.host, endpoint.port, identifier=f"bench-staff-{secrets.token_hex(4)}"
            )
        )
        truck_client = await stack.enter_async_context(
            aiomqtt.Client(
                endpoint.host,
                endpoint.port,
                username=probe.username,
                password=probe.secret,
                identifier=f"bench-probe-{secrets.token_hex(4)}",
            )
        )
        await staff.subscribe(probe.staff_topic, qos=1)
        async with asyncio.TaskGroup() as tasks:
            readers = [
                tasks.create_task(read_websocket(websocket, deliveries), name="websocket"),
                tasks.create_task(read_staff_topic(staff, deliveries), name="staff topic"),
                tasks.create_task(read_commits(listening, probe.tenant_id, deliveries), name="db"),
            ]
            try:
                await websocket.send(orjson.dumps({"op": "subscribe", "channels": ["alerts"]}))
                if not await deliveries.until(
                    lambda: deliveries.snapshots > 0 or bool(deliveries.lost), 10
                ):
                    raise RuntimeError("no snapshot from /ws/live within 10 s")
                for path, why in deliveries.lost.items():
                    say(f"WARNING: {path} path lost, measuring without it: {why}")
                started_epoch_s = time.time()
                truck = Truck(truck_client, probe, street, fix_start)
                done = await probe_cycles(truck, cycles, pause_s, deliveries)
                ended_epoch_s = time.time()
                await deliveries.until(lambda: all_arrived(done, deliveries), DELIVERY_TIMEOUT_S)
            finally:
                for reader in readers:
                    reader.cancel()
    return ProbeRun(done, deliveries, started_epoch_s, ended_epoch_s)


def all_arrived(cycles: Sequence[Cycle], deliveries: Deliveries) -> bool:
    for cycle in cycles:
        cycle.alert_id = deliveries.opened.get(cycle.off_since)
    return not any(deliveries.waiting_for(cycle.alert_id) for cycle in cycles)


# ---------------------------------------------------------------- figures


@dataclass(frozen=True, slots=True)
class Spread:
    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    def __str__(self) -> str:
        return (
            f"p50 {self.p50_ms:6.1f}  p95 {self.p95_ms:6.1f}  p99 {self.p99_ms:6.1f}"
            f"  max {self.max_ms:6.1f} ms  (n={self.count})"
        )


def spread(values_s: Sequence[float]) -> Spread | None:
    values_ms = sorted(v * 1000 for v in values_s)
    if not values_ms:
        return None
    if len(values_ms) == 1:
        return Spread(1, *(values_ms * 4))
    cuts = statistics.quantiles(values_ms, n=100, method="inclusive")
    return Spread(len(values_ms), cuts[49], cuts[94], cuts[98], values_ms[-1])


def shown(value: Spread | None) -> str:
    return str(value) if value is not None else "no data"


async def created_at(url: str, tenant_id: int) -> dict[int, float]:
    """Each probe alert's created_at (epoch s): now() of the writer's transaction."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cursor = await conn.execute(
            "SELECT id, extract(epoch FROM created_at)::float8 FROM alerts"
            " WHERE tenant_id = %s AND kind = 'wrong_route'",
            (tenant_id,),
        )
        return {int(row[0]): float(row[1]) for row in await cursor.fetchall()}


async def stored_rate(url: str, tenant_slug: str, start_s: float, end_s: float) -> float:
    """Background fixes per second with fix times in [start_s, end_s), as stored."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM positions p JOIN tenants t ON t.id = p.tenant_id"
            " WHERE t.slug = %s AND p.time >= to_timestamp(%s) AND p.time < to_timestamp(%s)",
            (tenant_slug, start_s, end_s),
        )
        row = await cursor.fetchone()
    return (int(row[0]) if row else 0) / max(end_s - start_s, 1e-9)


def stage_spreads(
    cycles: Sequence[Cycle], deliveries: Deliveries, created: dict[int, float]
) -> dict[str, Spread | None]:
    """Each delivery split at the writer transaction's start and at its commit."""
    stages: dict[str, list[float]] = {
        "publish -> writer transaction starts (created_at)": [],
        "transaction start -> commit (NOTIFY heard)": [],
        "commit -> WebSocket": [],
        "commit -> staff topic": [],
    }
    names = list(stages)
    for cycle in cycles:
        committed = deliveries.at("commit", cycle.alert_id)
        if cycle.alert_id is None or committed is None:
            continue
        commit_epoch_s = cycle.published_epoch_s + committed - cycle.published_s
        began_s = created.get(cycle.alert_id)
        if began_s is not None:
            stages[names[0]].append(began_s - cycle.published_epoch_s)
            stages[names[1]].append(commit_epoch_s - began_s)
        for name, path in ((names[2], "websocket"), (names[3], "staff")):
            arrived = deliveries.at(path, cycle.alert_id)
            if arrived is not None:
                stages[name].append(arrived - committed)
    return {name: spread(values) for name, values in stages.items()}


def writer_figures(before: dict[str, float], after: dict[str, float]) -> str:
    """The rules writer over the probe, all tenants: from sanitrack_rules_* metrics."""

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    kinds = {
        name.split('kind="')[1].rstrip('"}'): delta(name)
        for name in after
        if name.startswith("sanitrack_rules_signals_total{")
    }
    batches = delta("sanitrack_rules_write_seconds_count")
    mean_ms = delta("sanitrack_rules_write_seconds_sum") / batches * 1000 if batches else 0.0
    buckets = sorted(
        (float(name.split('le="')[1].rstrip('"}')), delta(name))
        for name in after
        if name.startswith("sanitrack_rules_write_seconds_bucket{")
    )
    p99_bound = next((le for le, count in buckets if count >= 0.99 * batches), float("inf"))
    signals = ", ".join(f"{kind} {count:.0f}" for kind, count in sorted(kinds.items()) if count)
    return (
        f"{batches:.0f} writer batches, emission -> commit mean {mean_ms:.1f} ms,"
        f" p99 <= {p99_bound * 1000:.0f} ms (histogram bucket);"
        f" alert changes emitted: {signals or 'none'}"
    )


def print_report(
    args: argparse.Namespace,
    played: Played,
    stored_fixes_s: float,
    run: ProbeRun,
    created: dict[int, float],
    usage: dict[str, str],
    writer: str,
) -> None:
    deliveries = run.deliveries
    counted = [c for c in run.cycles if c.number >= WARM_UP_CYCLES]
    latencies = {
        path: [
            arrived - c.published_s
            for c in counted
            if (arrived := deliveries.at(path, c.alert_id)) is not None
        ]
        for path in PATHS
    }
    resolved = [
        arrived - c.resolve_published_s
        for c in counted
        if c.resolve_published_s is not None
        and (arrived := deliveries.at("websocket", c.alert_id, "resolved")) is not None
    ]
    opened = sum(1 for c in counted if c.alert_id is not None)
    due_fixes_s = args.devices / INTERVAL_S
    print(f"\nALERT DELIVERY UNDER LOAD (Mosquitto; {time.strftime('%Y-%m-%d %H:%M')})")
    print(
        f"  background: {args.devices:,} devices at {INTERVAL_S:.0f} s ="
        f" {args.devices / MEASURED_MAX_DEVICES:.2f} of the measured maximum"
        f" ({MEASURED_MAX_DEVICES:,}); due {due_fixes_s:,.0f} fixes/s; simulator sent"
        f" {played.position_rate_msg_s:,.0f} fixes/s over {played.wall_s:.0f} s through"
        f" {played.sessions:,} sessions; stored {stored_fixes_s:,.0f} fixes/s during the probe"
        + (f"; simulator error: {played.error}" if played.error else "")
    )
    print(
        f"  probe: {len(counted)} cycles (+{WARM_UP_CYCLES} warm-up not counted) in"
        f" {run.ended_epoch_s - run.started_epoch_s:.0f} s; wrong_route alerts opened: {opened}"
    )
    for path, title in (("websocket", "publish -> WebSocket"), ("staff", "publish -> staff topic")):
        missing = sum(1 for c in counted if deliveries.at(path, c.alert_id) is None)
        lost = f" (path lost: {deliveries.lost[path]})" if path in deliveries.lost else ""
        print(f"  {title:<24} {shown(spread(latencies[path]))}  missing {missing}{lost}")
    print(f"  {'(resolved -> WebSocket)':<24} {shown(spread(resolved))}")
    p99s = {path: spread(values) for path, values in latencies.items()}
    verdicts = ", ".join(
        f"{path} p99 {s.p99_ms:.0f} ms {'met' if s.p99_ms <= TARGET_P99_MS else 'MISSED'}"
        if (s := p99s[path]) is not None
        else f"{path} no data"
        for path in PATHS
    )
    print(
        f"  target: p99 <= {TARGET_P99_MS:.0f} ms on both paths at half the maximum ingest"
        f" rate: {verdicts}"
    )
    print("  where the time goes:")
    for name, value in stage_spreads(counted, deliveries, created).items():
        print(f"    {name:<50} {shown(value)}")
    print(f"  rules writer, all tenants, during the probe: {writer}")
    others = ", ".join(f"{k} {n}" for k, n in sorted(deliveries.others.items()))
    print(f"  other probe-tenant messages (not measured): {others or 'none'}")
    print(
        "  CPU (100 % = one core) during the probe: "
        + "  ".join(f"{k} {v}" for k, v in usage.items())
    )


# ---------------------------------------------------------------- start to end


def probe_geometry(cycles: int) -> tuple[Street, dt.datetime]:
    fixes = LEAD_FIXES + (WARM_UP_CYCLES + cycles) * (OFF_FIXES + BACK_FIXES)
    step_m = min(MAX_STEP_M, USABLE_M / fixes)
    if step_m < MIN_STEP_M:
        most = int((USABLE_M / MIN_STEP_M - LEAD_FIXES) / (OFF_FIXES + BACK_FIXES)) - 1
        raise SystemExit(f"--cycles {cycles}: at most {most} cycles fit on the 20 km street")
    span = dt.timedelta(seconds=fixes * FIX_INTERVAL_S)
    back = max(dt.timedelta(hours=1), span + dt.timedelta(minutes=15))
    start = (dt.datetime.now(dt.UTC) - back).replace(microsecond=0)
    return Street(LocalProjection(*STREET_ORIGIN), step_m), start


async def run(args: argparse.Namespace) -> None:
    street, fix_start = probe_geometry(args.cycles)
    token = secrets.token_urlsafe(18)
    warn_about_neighbours()
    async with bench_database() as url, contextlib.AsyncExitStack() as stack:
        database = url.rsplit("/", 1)[1]
        if args.machine_mosquitto:
            endpoint = await stack.enter_async_context(mosquitto())
        else:
            endpoint = await stack.enter_async_context(own_mosquitto(Path(args.work)))
        say(f"broker: Mosquitto on {endpoint.host}:{endpoint.port}")
        say(f"database {database}; registering {args.devices:,} background devices ...")
        began = time.monotonic()
        background = await register_background(url, args.devices)
        # Runs last (after the simulator's goodbye): its devices' retained status messages.
        stack.push_async_callback(forget_retained_status, endpoint, background.status_topics)
        probe = await register_probe(url, street, fix_start)
        say(
            f"registered in {time.monotonic() - began:.0f} s; probe truck at"
            f" {street.speed_kmh:.1f} km/h, fixes from {fix_start:%H:%M} UTC"
        )
        sampler = ResourceSampler(database)
        sampler.watch("broker", endpoint.broker_pid)
        sampler.watch("bench", os.getpid())
        sampling = asyncio.create_task(sampler.run(), name="sampler")
        stack.callback(sampling.cancel)
        ingest = await stack.enter_async_context(
            ingest_with_live_feed(url, endpoint, token, Path(args.work))
        )
        sampler.watch("ingest", ingest.process.pid)
        say(f"ingest running (log {ingest.log_path}); starting the simulator ...")
        # stopped when the probe ends
        duration_s = args.warm_up_s + 300 + (5.0 + args.pause_s) * args.cycles
        job = Job(
            background.config,
            args.devices,
            background.secrets,
            endpoint.host,
            endpoint.port,
            duration_s,
            args.max_sessions,
            1.0,
        )
        simulator = await stack.enter_async_context(background_simulator(job, sampler))
        await simulator.wait_playing(600)
        say(f"simulator playing; warming up {args.warm_up_s:.0f} s ...")
        await asyncio.sleep(args.warm_up_s)
        metrics_before = await rules_metrics(ingest)
        say(f"probe: {args.cycles} cycles (+{WARM_UP_CYCLES} warm-up)")
        probe_run = await run_probe(
            url,
            endpoint,
            probe,
            street,
            fix_start,
            ingest.http_port,
            token,
            args.cycles,
            args.pause_s,
        )
        metrics_after = await rules_metrics(ingest)
        window = (probe_run.started_epoch_s, probe_run.ended_epoch_s)
        groups = ("ingest", "simulator", "broker", "postgres", "bench")
        measured = {group: sampler.usage(group, *window) for group in groups}
        usage = {group: str(value) for group, value in measured.items()}
        machine = sampler.machine_cpu(*window)
        # CPU no measured process accounts for: another workload disturbing the figures.
        others = max(0.0, machine - sum(u.cpu_percent for u in measured.values()))
        usage["machine"] = f"{machine:.0f}%/200% (other processes {others:.0f}%)"
        played = await simulator.finish()
        if not played.error and played.start_epoch_s + played.wall_s < window[1]:
            say("WARNING: the background simulation ended before the probe")
        tenant_slug = str(background.config["tenant"])
        stored_fixes_s = await stored_rate(url, tenant_slug, *window)
        created = await created_at(url, probe.tenant_id)
        print_report(
            args,
            played,
            stored_fixes_s,
            probe_run,
            created,
            usage,
            writer_figures(metrics_before, metrics_after),
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.alerts", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--devices", type=int, default=None, help="background devices (25000)")
    parser.add_argument("--cycles", type=int, default=None, help="probe excursions (200)")
    parser.add_argument("--quick", action="store_true", help="2,000 devices, 20 cycles")
    parser.add_argument("--max-sessions", type=int, default=18_000)
    parser.add_argument(
        "--warm-up-s", type=float, default=None, help="load before the probe (20; --quick 5)"
    )
    parser.add_argument(
        "--pause-s",
        type=float,
        default=0.0,
        help="between cycles: a longer probe sees more of the ingest's life (its GC, reloads)",
    )
    parser.add_argument("--work", default=tempfile.gettempdir(), help="where the ingest log goes")
    parser.add_argument(
        "--machine-mosquitto",
        action="store_true",
        help="the machine's Mosquitto on 127.0.0.1:1883 (its own queue limits) instead of one"
        " started with the deployment's (deploy/mosquitto/mosquitto.conf)",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    args.devices = args.devices or (2000 if quick else 25_000)
    args.cycles = args.cycles or (20 if quick else 200)
    args.warm_up_s = args.warm_up_s if args.warm_up_s is not None else (5.0 if quick else 20.0)
    if args.devices < 5:
        parser.error("--devices: at least 5 (four trucks to a phone)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.machine_mosquitto and not mosquitto_reachable():
        print("Mosquitto is not reachable on 127.0.0.1:1883", file=sys.stderr)
        return 1
    began = time.monotonic()
    asyncio.run(run(args))
    print(f"\ntotal time {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
