"""Plays a scenario into an MQTT broker: one session per device, each emission at its time.

Real time (``speedup=1``), accelerated, or as fast as the broker acknowledges
(``speedup=None``). Device scripts are merged by scenario time; the loop never waits for a
device, except that a session at its in-flight bound holds the stream until acks arrive
(back-pressure, counted), so nothing is dropped on the simulator's side.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from simulator.faults import TruthLog
from simulator.scenario import Scenario, merged_emissions
from simulator.stream import Action, DeviceScript, Emission
from simulator.wire import ConnectionLost, ConnectRefused, DeviceSession, InflightFull, Will

CONNECT_CONCURRENCY = 200
YIELD_EVERY = 256
TICK_S = 0.005  # emissions between two turns of the event loop (acks must be read)


@dataclass(slots=True)
class RunStats:
    devices: int
    published: int = 0
    position_messages: int = 0
    played: int = 0  # published while playing the scenario (not connecting or leaving)
    began_epoch_s: float = 0.0  # when playing began (scenario second 0 when live)
    reconnects: int = 0
    bad_logins_refused: int = 0
    bad_logins_accepted: int = 0  # a broker that lets anyone in (the CI Mosquitto does)
    backpressure_waits: int = 0
    lost_publishes: int = 0  # publishes a dropped connection took with it
    sim_s: float = 0.0
    wall_s: float = 0.0
    sessions: list[DeviceSession] = field(default_factory=list, repr=False)

    @property
    def connected(self) -> int:
        return sum(1 for s in self.sessions if s.connected)

    @property
    def acked(self) -> int:
        return sum(s.acked for s in self.sessions)


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def progress_line(stats: RunStats, truth: TruthLog, until_s: float, rate: float) -> str:
    return (
        f"sim {_clock(stats.sim_s)}/{_clock(until_s)}  devices {stats.connected}/{stats.devices}"
        f"  sent {stats.published:,} ({rate:,.0f}/s)  acked {stats.acked:,}"
        f"  faults {len(truth):,}"
    )


async def play(
    scenario: Scenario,
    secrets: dict[str, str],
    host: str,
    port: int,
    truth: TruthLog,
    *,
    speedup: float | None = 1.0,
    say: Callable[[str], None] | None = None,
    progress_s: float = 2.0,
    stop: asyncio.Event | None = None,
    max_sessions: int | None = None,
    live_start: bool = False,
) -> RunStats:
    """Publish the scenario from second 0 to ``scenario.until_s``; returns what was sent.

    ``max_sessions``: more devices than this share sessions, device ``i`` publishing through
    session ``i % max_sessions`` like devices behind a gateway (load tests beyond a broker's
    connection limit; a dropout then drops the whole gateway). ``live_start``: second 0 is
    the moment publishing begins (after connecting), so a fix's ``ts`` is when it is sent.
    """
    scripts = scenario.scripts
    stats = RunStats(devices=len(scripts))
    owners = scripts[: max_sessions or len(scripts)]
    stats.sessions = [_session(script, secrets[script.slug]) for script in owners]
    background: set[asyncio.Task[None]] = set()
    try:
        await _connect_all(stats, owners, host, port, say)
        lead_s = 0.0
        if live_start:
            # the streams' first emissions are computed before the first is due
            lead_s = 1.0 + len(scripts) / 20_000
            now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=lead_s)
            scenario = dataclasses.replace(scenario, start=now)
            truth.start = now
        await _merge(
            scenario,
            stats,
            scripts,
            host,
            port,
            truth,
            speedup,
            say,
            progress_s,
            stop,
            background,
            lead_s,
        )
        for session in stats.sessions:
            if session.connected:
                with contextlib.suppress(ConnectionLost):
                    await session.wait_acked(10.0)
    finally:
        if background:
            await asyncio.gather(*background, return_exceptions=True)
        for script, session in zip(owners, stats.sessions, strict=True):
            if session.connected:
                # the status is acknowledged before the goodbye: amqtt leaks the connection
                # of a client that closes while its last publish is being handled
                with contextlib.suppress(ConnectionLost, InflightFull, TimeoutError):
                    session.publish(script.status_topic, b"offline", retain=True)
                    stats.published += 1
                    await session.wait_acked(5.0)
                with contextlib.suppress(Exception):
                    await session.disconnect()
    return stats


def _session(script: DeviceScript, secret: str) -> DeviceSession:
    return DeviceSession(
        script.username,
        script.username,
        secret,
        keepalive_s=60,
        will=Will(script.status_topic, b"offline", qos=1, retain=True),
    )


async def _connect_all(
    stats: RunStats,
    scripts: tuple[DeviceScript, ...],
    host: str,
    port: int,
    say: Callable[[str], None] | None,
) -> None:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    done = 0

    async def connect(script: DeviceScript, session: DeviceSession) -> None:
        async with gate:
            await session.connect(host, port, timeout_s=30.0)
            session.publish(script.status_topic, b"online", retain=True)
            stats.published += 1
            nonlocal done
            done += 1
            if say and done % 2000 == 0:
                say(f"connected {done}/{stats.devices} devices")

    async with asyncio.TaskGroup() as tasks:
        for script, session in zip(scripts, stats.sessions, strict=True):
            tasks.create_task(connect(script, session), name=f"connect {script.slug}")


async def _merge(
    scenario: Scenario,
    stats: RunStats,
    scripts: tuple[DeviceScript, ...],
    host: str,
    port: int,
    truth: TruthLog,
    speedup: float | None,
    say: Callable[[str], None] | None,
    progress_s: float,
    stop: asyncio.Event | None,
    background: set[asyncio.Task[None]],
    lead_s: float,
) -> None:
    loop = asyncio.get_running_loop()
    began = loop.time() + lead_s  # the loop time of scenario second 0
    stats.began_epoch_s = time.time() + lead_s
    published_before = stats.published
    last_report, last_published = loop.time(), stats.published
    finished = True
    awake_until = -math.inf  # emissions due before this loop time go out without a check
    for handled, (index, emission) in enumerate(merged_emissions(scenario, truth), start=1):
        if stop is not None and stop.is_set():
            finished = False
            break
        due = began + emission.at_s / speedup if speedup is not None else 0.0
        if due > awake_until:
            # Wake on a tick, not for every message: an event-loop turn per message would cost
            # more than the message. Emissions go out at most TICK_S after they are due.
            now = loop.time()
            if due > now:
                await asyncio.sleep(max(due - now, TICK_S))
            awake_until = loop.time()
        stats.sim_s = emission.at_s
        session = stats.sessions[index % len(stats.sessions)]
        await _act(emission, scripts[index], session, stats, host, port, background)
        if handled % YIELD_EVERY == 0:
            await asyncio.sleep(0)  # let the sessions read their acks
            now = loop.time()
            if now - last_report >= progress_s:
                if say:
                    rate = (stats.published - last_published) / (now - last_report)
                    say(progress_line(stats, truth, scenario.until_s, rate))
                last_report, last_published = now, stats.published
    if finished:
        stats.sim_s = scenario.until_s
    stats.wall_s = loop.time() - began
    stats.played = stats.published - published_before


async def _act(
    emission: Emission,
    script: DeviceScript,
    session: DeviceSession,
    stats: RunStats,
    host: str,
    port: int,
    background: set[asyncio.Task[None]],
) -> None:
    action = emission.action
    if action is Action.PUBLISH:
        await _publish(
            session, emission.topic, emission.payload, emission.retain, stats, host, port, script
        )
    elif action is Action.DROP:
        if session.connected:
            stats.lost_publishes += session.in_flight
            session.abort()
    elif action is Action.RECONNECT:
        await _reconnect(session, script, stats, host, port)
    elif action is Action.BAD_LOGIN:
        task = asyncio.create_task(_bad_login(script, stats, host, port), name="bad login")
        background.add(task)
        task.add_done_callback(background.discard)


async def _publish(
    session: DeviceSession,
    topic: str,
    payload: bytes,
    retain: bool,
    stats: RunStats,
    host: str,
    port: int,
    script: DeviceScript,
) -> None:
    while True:
        try:
            session.publish(topic, payload, qos=1, retain=retain)
            stats.published += 1
            if topic == script.position_topic:
                stats.position_messages += 1
            return
        except InflightFull:
            stats.backpressure_waits += 1
            await asyncio.sleep(0.002)
        except ConnectionLost:
            # the broker dropped us (not a scripted dropout): reconnect and send it
            await asyncio.sleep(0.1)
            await _reconnect(session, script, stats, host, port)


async def _reconnect(
    session: DeviceSession, script: DeviceScript, stats: RunStats, host: str, port: int
) -> None:
    if session.connected:
        return
    for attempt in range(5):
        try:
            await session.connect(host, port, timeout_s=10.0)
        except (ConnectionLost, ConnectRefused, TimeoutError):
            await asyncio.sleep(0.2 * (attempt + 1))
            continue
        stats.reconnects += 1
        session.publish(script.status_topic, b"online", retain=True)
        stats.published += 1
        return
    raise ConnectionLost(script.username, "could not reconnect after 5 attempts")


async def _bad_login(script: DeviceScript, stats: RunStats, host: str, port: int) -> None:
    intruder = DeviceSession(
        f"{script.username}-{time.monotonic_ns() % 1_000_000}", script.username, "wrong-secret"
    )
    try:
        await intruder.connect(host, port, timeout_s=10.0)
    except ConnectRefused:
        stats.bad_logins_refused += 1
        return
    except (ConnectionLost, TimeoutError):
        stats.bad_logins_refused += 1  # some brokers just close the connection
        return
    stats.bad_logins_accepted += 1
    await intruder.disconnect()
