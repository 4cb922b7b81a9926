"""Throughput, CPU and memory of `simulator.wire`: N device sessions publishing QoS 1.

Run from the repository root (it prints figures; it passes or fails nothing):

    .venv/bin/python -m bench.wire [--sessions 2000] [--duration-s 10] [--rate-msg-s 0]
                                   [--max-inflight 20] [--payload-bytes 160]

It needs the machine's Mosquitto on 127.0.0.1:1883 with anonymous logins. Each
session is one `DeviceSession` (its own TCP connection, client id
``bench-wire-<run>-<n>``) publishing to ``bench/wire/<run>/<n>``, outside
``sanitrack/``, so a running ingest never sees these messages; nobody subscribes,
so Mosquitto only acknowledges them.

``--rate-msg-s 0`` (the default) publishes as fast as possible: one driver task
fills every session up to ``--max-inflight`` unacknowledged messages, lets the
loop read PUBACKs, and goes round again. A rate paces the same driver by 10 ms
ticks, to see the cost at the simulator's target (~10,000 msg/s in total).

Printed: messages/s and acks/s over the window; CPU seconds of this process per
1,000 messages (user + system, everything: encoding, send() and the PUBACK
reads); wall time of the publish passes per message; RSS per connected session
(RSS after connecting minus before creating the sessions, over N); PUBACK
latency p50/p99 (`time.monotonic_ns` at publish -> at the read of its PUBACK);
Mosquitto's CPU over the window, for context: on a 2-core machine it and this
process share the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import secrets
import socket
import statistics
import sys
import time
from array import array
from dataclasses import dataclass

import psutil

from simulator.wire import DeviceSession, InflightFull

MOSQUITTO = ("127.0.0.1", 1883)
CONNECT_WAVE = 500  # sessions connecting at once
TICK_S = 0.01  # the paced driver's step


@dataclass(slots=True)
class Window:
    """What happened while the driver published."""

    seconds: float
    published: int
    acked: int
    backpressure: int
    cpu_s: float
    publish_pass_s: float
    broker_cpu_s: float | None


def mosquitto_process() -> psutil.Process | None:
    for process in psutil.process_iter(["name"]):
        if process.info["name"] == "mosquitto":
            return process
    return None


def cpu_seconds(process: psutil.Process | None) -> float | None:
    if process is None:
        return None
    times = process.cpu_times()
    return float(times.user + times.system)


async def connect_all(sessions: list[DeviceSession]) -> None:
    host, port = MOSQUITTO
    for start in range(0, len(sessions), CONNECT_WAVE):
        wave = sessions[start : start + CONNECT_WAVE]
        await asyncio.gather(*(session.connect(host, port, timeout_s=30) for session in wave))


async def disconnect_all(sessions: list[DeviceSession]) -> None:
    for start in range(0, len(sessions), CONNECT_WAVE):
        wave = sessions[start : start + CONNECT_WAVE]
        await asyncio.gather(*(session.disconnect() for session in wave))


async def drive(
    sessions: list[DeviceSession], topics: list[str], payload: bytes, args: argparse.Namespace
) -> Window:
    me, broker = psutil.Process(), mosquitto_process()
    published_before = sum(s.published for s in sessions)
    acked_before = sum(s.acked for s in sessions)
    cpu_before, broker_before = cpu_seconds(me), cpu_seconds(broker)
    assert cpu_before is not None
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + args.duration_s
    backpressure = 0
    pass_ns = 0
    budget, last_tick = 0.0, started  # messages the paced driver may still send
    cursor = 0
    count = len(sessions)
    while loop.time() < deadline:
        if args.rate_msg_s:
            now = loop.time()
            budget = min(budget + args.rate_msg_s * (now - last_tick), args.rate_msg_s)
            last_tick = now
        pass_started = time.perf_counter_ns()
        sent = 0
        for _ in range(count):
            if args.rate_msg_s and sent >= budget:
                break
            session, topic = sessions[cursor], topics[cursor]
            cursor = cursor + 1 if cursor + 1 < count else 0
            while session.in_flight < args.max_inflight:
                try:
                    session.publish(topic, payload)
                except InflightFull:
                    backpressure += 1
                    break
                sent += 1
                if args.rate_msg_s:
                    break  # spread paced messages over the sessions
        pass_ns += time.perf_counter_ns() - pass_started
        budget -= sent
        if args.rate_msg_s:
            await asyncio.sleep(TICK_S)
        else:
            await asyncio.sleep(0 if sent else 0.0005)  # read PUBACKs, then go round again
    seconds = loop.time() - started
    cpu_after, broker_after = cpu_seconds(me), cpu_seconds(broker)
    assert cpu_after is not None
    return Window(
        seconds=seconds,
        published=sum(s.published for s in sessions) - published_before,
        acked=sum(s.acked for s in sessions) - acked_before,
        backpressure=backpressure,
        cpu_s=cpu_after - cpu_before,
        publish_pass_s=pass_ns / 1e9,
        broker_cpu_s=(
            broker_after - broker_before
            if broker_after is not None and broker_before is not None
            else None
        ),
    )


def percentile_ms(sorted_ns: list[int], share: float) -> float:
    if not sorted_ns:
        return float("nan")
    return sorted_ns[min(len(sorted_ns) - 1, int(share * len(sorted_ns)))] / 1e6


async def run(args: argparse.Namespace) -> int:
    try:
        socket.create_connection(MOSQUITTO, timeout=1).close()
    except OSError:
        print(f"Mosquitto is not reachable on {MOSQUITTO[0]}:{MOSQUITTO[1]}", file=sys.stderr)
        return 1
    run_id = secrets.token_hex(3)
    me = psutil.Process()
    latencies_ns = array("q")

    def record(published_ns: int, acked_ns: int) -> None:
        latencies_ns.append(acked_ns - published_ns)

    gc.collect()
    rss_before = me.memory_info().rss
    sessions = [
        DeviceSession(
            f"bench-wire-{run_id}-{n}",
            None,
            None,
            max_inflight=args.max_inflight,
            on_ack=record,
        )
        for n in range(args.sessions)
    ]
    topics = [f"bench/wire/{run_id}/{n}" for n in range(args.sessions)]
    payload = (b'{"ts":"2025-01-01T00:00:00Z","lat":20.97,"lon":105.77,' + b"x" * 1024)[
        : args.payload_bytes
    ]
    connect_started = time.monotonic()
    await connect_all(sessions)
    connect_s = time.monotonic() - connect_started
    gc.collect()
    rss_connected = me.memory_info().rss
    print(
        f"{args.sessions} sessions connected in {connect_s:.1f} s;"
        f" RSS {(rss_connected - rss_before) / args.sessions / 1024:.1f} KiB per session"
        f" ({rss_connected / 2**20:.0f} MiB in all)",
        flush=True,
    )
    mode = f"paced at {args.rate_msg_s} msg/s" if args.rate_msg_s else "as fast as possible"
    print(
        f"publishing QoS 1 for {args.duration_s:.0f} s, {mode},"
        f" {len(payload)}-byte payloads, max {args.max_inflight} in flight per session",
        flush=True,
    )
    window = await drive(sessions, topics, payload, args)
    drained = all(await asyncio.gather(*(s.wait_acked(30) for s in sessions)))
    lost = sum(1 for s in sessions if not s.connected)
    print_window(window, args.sessions)
    latencies = sorted(latencies_ns)
    print(
        f"  PUBACK latency p50 {percentile_ms(latencies, 0.50):.1f} ms"
        f" p99 {percentile_ms(latencies, 0.99):.1f} ms"
        f" (mean {statistics.fmean(latencies) / 1e6 if latencies else float('nan'):.1f} ms,"
        f" {len(latencies)} acks)"
    )
    print(
        f"  after the window: all acked {drained}; sessions lost {lost};"
        f" RSS {me.memory_info().rss / 2**20:.0f} MiB"
    )
    await disconnect_all(sessions)
    return 0


def print_window(window: Window, sessions: int) -> None:
    per_thousand = window.cpu_s / window.published * 1000 if window.published else float("nan")
    print(f"  published {window.published} in {window.seconds:.1f} s")
    print(
        f"  {window.published / window.seconds:,.0f} msg/s,"
        f" {window.acked / window.seconds:,.0f} acks/s,"
        f" back-pressure refusals {window.backpressure}"
    )
    print(
        f"  this process: {window.cpu_s:.2f} CPU s = {window.cpu_s / window.seconds:.0%} of a core;"
        f" {per_thousand * 1000:.1f} CPU ms per 1,000 messages"
        f" ({per_thousand:.4f} CPU s); publish passes"
        f" {window.publish_pass_s / max(window.published, 1) * 1e6:.2f} us per message"
        " (publish() with send(), plus the driver's loop)"
    )
    if window.broker_cpu_s is not None:
        print(f"  mosquitto: {window.broker_cpu_s / window.seconds:.0%} of a core")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.wire", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--sessions", type=int, default=2000, help="device sessions (2000)")
    parser.add_argument("--duration-s", type=float, default=10.0, help="publishing window (10)")
    parser.add_argument(
        "--rate-msg-s", type=int, default=0, help="total rate; 0 = as fast as possible (0)"
    )
    parser.add_argument(
        "--max-inflight", type=int, default=20, help="unacked QoS 1 per session (20)"
    )
    parser.add_argument("--payload-bytes", type=int, default=160, help="payload size (160)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
