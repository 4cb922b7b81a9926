"""`sanitrack simulate`: build a scenario, register it, play it into the broker, write the truth.

Shared by `sanitrack demo`, which plays a small scenario in real time beside the system.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import math
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import accounts
import fleet
from ingest import MqttEndpoint
from sanitrack.app import database
from sanitrack.settings import Settings
from simulator import (
    ScenarioConfig,
    TruthLog,
    build_scenario,
    fault_rates,
    play,
    register_scenario,
)
from simulator.drawing import city_svg
from simulator.runner import RunStats
from simulator.scenario import Scenario
from storage import Pool


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = ScenarioConfig()
    parser.add_argument("--vehicles", type=int, default=200, help="trucks (default 200)")
    parser.add_argument("--phones", type=int, default=400, help="staff phones (default 400)")
    parser.add_argument(
        "--interval-s", type=float, default=5.0, help="fix interval of every device (1-30 s)"
    )
    parser.add_argument(
        "--speedup",
        type=_speedup,
        default=1.0,
        help="1 = real time, 10 = ten times faster, max = as fast as the broker acknowledges",
    )
    parser.add_argument(
        "--faults", default="default", help="none, light, default or heavy (default: default)"
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override one rate, e.g. --fault duplicate_share=0.01 (repeatable)",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--duration", type=float, default=600.0, metavar="S", help="scenario seconds to play"
    )
    parser.add_argument("--truth", type=Path, default=None, help="ground-truth JSONL file")
    parser.add_argument(
        "--start",
        type=_instant,
        default=None,
        help="scenario start (ISO 8601 with offset); default: chosen so no fix is in the future",
    )
    parser.add_argument("--stops-per-run", type=int, default=defaults.stops_per_run)
    parser.add_argument("--tenant", default=defaults.tenant)
    parser.add_argument(
        "--no-route-runs", action="store_true", help="register devices only (load tests)"
    )
    parser.add_argument(
        "--map", type=Path, default=None, help="draw the city and the route runs to an SVG file"
    )


def _speedup(text: str) -> float | None:
    if text == "max":
        return None
    value = float(text)
    if not 0 < value <= 1000:
        raise argparse.ArgumentTypeError(f"{text}: a factor in (0, 1000] or 'max'")
    return value


def _instant(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text}: give an offset, e.g. +07:00")
    return moment.astimezone(dt.UTC)


def _overrides(pairs: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--fault {pair!r}: expected NAME=VALUE")
        values[name.strip()] = (
            tuple(float(v) for v in value.split(",")) if "," in value else float(value)
        )
    return values


def default_start(now: dt.datetime, duration_s: float, speedup: float | None) -> dt.datetime:
    """The earliest start at which no fix is stamped after the moment it is sent: accelerated
    time runs ahead of the clock, so the scenario is placed that much in the past."""
    ahead = duration_s if speedup is None else duration_s * max(0.0, 1 - 1 / speedup)
    return (now - dt.timedelta(seconds=math.ceil(ahead))).replace(microsecond=0)


@contextlib.contextmanager
def truth_sink(path: Path | None) -> Iterator[IO[bytes] | None]:
    if path is None:
        yield None
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as sink:
        yield sink


def write_map(scenario: Scenario, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    title = (
        f"Hà Đông (mô phỏng), seed {scenario.config.seed}: {len(scenario.plans)} tuyến,"
        f" {len(scenario.points)} điểm thu gom"
    )
    path.write_text(city_svg(scenario.city, scenario.plans, title), encoding="utf-8")
    say(f"map of the city and its route runs: {path}")


@dataclass(frozen=True, slots=True)
class DemoLogin:
    username: str
    password: str
    token: str


DEMO_DISPATCHER = "dieuphoi"


async def demo_login(
    pool: Pool,
    tenant_slug: str,
    token_ttl_s: float,
    username: str = DEMO_DISPATCHER,
    full_name: str = "Điều phối viên (demo)",
    role: accounts.Role = accounts.Role.DISPATCHER,
) -> DemoLogin:
    """A demo user (the dispatcher unless said otherwise), with a fresh random password and
    a token for the printed URL."""
    password = secrets.token_urlsafe(9)
    async with pool.connection() as conn:
        tenant = await fleet.get_tenant(conn, tenant_slug)
        users = {u.username: u for u in await accounts.list_users(conn, tenant.id)}
        user = users.get(username)
        now = dt.datetime.now(dt.UTC)
        if user is None:
            user = await accounts.create_user(
                conn, tenant.id, accounts.NewUser(username, full_name, role, password)
            )
        else:
            await accounts.set_password(conn, tenant.id, user.id, password, now)
            user = await accounts.set_active(conn, tenant.id, user.id, True, now)
        issued = await accounts.issue_token(conn, user, now, token_ttl_s, "sanitrack demo")
    return DemoLogin(username, password, issued.token)


def say(text: str) -> None:
    print(f"  {text}", flush=True)


async def simulate(settings: Settings, args: argparse.Namespace) -> int:
    if settings.mqtt_url is None:
        print(
            "sanitrack: set SANITRACK_MQTT_URL to the broker the system listens on"
            " (`sanitrack demo` runs the simulator against its embedded broker)",
            file=sys.stderr,
        )
        return 2
    try:
        config = ScenarioConfig(
            seed=args.seed,
            vehicles=args.vehicles,
            phones=args.phones,
            interval_s=args.interval_s,
            phone_interval_s=args.interval_s,
            stops_per_run=args.stops_per_run,
            tenant=args.tenant,
            faults=fault_rates(args.faults, _overrides(args.fault)),
        )
    except ValueError as exc:
        print(f"sanitrack: {exc}", file=sys.stderr)
        return 2
    start = args.start or default_start(dt.datetime.now(dt.UTC), args.duration, args.speedup)
    endpoint = MqttEndpoint.from_url(settings.mqtt_url)
    print(f"sanitrack simulate: seed {config.seed}, start {start.isoformat()}", flush=True)
    scenario = await asyncio.to_thread(build_scenario, config, start, args.duration, say)
    if args.map is not None:
        write_map(scenario, args.map)
    async with database(settings) as db:
        registered = await register_scenario(
            db.pool, scenario, route_runs=not args.no_route_runs, progress=say
        )
    with truth_sink(args.truth) as sink:
        truth = TruthLog(start, sink)
        stats = await play(
            scenario,
            registered.secrets,
            endpoint.host,
            endpoint.port,
            truth,
            speedup=args.speedup,
            say=say,
        )
    print(summary(stats, truth), flush=True)
    return 0


def summary(stats: RunStats, truth: TruthLog) -> str:
    faults = ", ".join(f"{kind}: {n}" for kind, n in truth.counts.items() if n)
    rate = stats.published / stats.wall_s if stats.wall_s else 0.0
    return (
        f"simulator: sent {stats.published:,} messages in {stats.wall_s:.1f} s"
        f" ({rate:,.0f}/s), acknowledged {stats.acked:,}; reconnects {stats.reconnects},"
        f" wrong logins refused {stats.bad_logins_refused}"
        f" (accepted {stats.bad_logins_accepted}); back-pressure waits"
        f" {stats.backpressure_waits}\n  faults injected: {faults or 'none'}"
    )
