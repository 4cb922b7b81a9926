"""How long the reports take on a full day's data: the downsampled track, a vehicle's day and
a route run's compliance.

Run from the repository root (it prints figures; it is not a pass/fail test):

    .venv/bin/python -m bench.reports [--runs 50] [--vehicles 10] [--bucket-s 30]

It creates ``sanitrack_bench_reports_<random>`` on the server of
SANITRACK_BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/test), migrates
it, and drops it at the end. Into it go:

* ``--vehicles`` vehicle-days of 17,000 fixes at 5 s (23.6 h) yesterday, one device each: a
  truck leaves the depot, crawls a street path of ~1,900 vertices serving 300 collection
  points (a 30-90 s dwell each: too short to be parkings), parks an hour for lunch, and
  parks at the depot at night; 5 m of GPS noise while moving and a GPS jump every ~2,000
  fixes.
* one more truck with a 300-stop route run along such a path and 8,000 fixes over it, a
  stretch driven 150 m off the path, and the rules' evidence: a visit per served stop (some
  late, some only probable) and a missed_stop alert per skipped stop.

Each measured call runs ``--runs`` times on one connection after one warm-up call, and
p50 / p99 / max wall times are printed, with the parts of each call (the read, the pure
computation) timed apart.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import os
import secrets
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg import sql

import alerts
import customers
import fleet
import planning
import reports
from geo import LocalProjection
from reports import sources
from sanitrack.settings import load_settings
from storage import (
    apply_migrations,
    detect_backend,
    downsampled_track,
    maintain,
    track_fixes,
    write_positions,
)

DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/test"
INTERVAL_S = 5.0
DAY_FIXES = 17_000
RUN_FIXES = 8_000
STOPS = 300
PATH_VERTICES = 1_900
NOISE_M = 5.0
JUMP_EVERY_FIXES = 2_000
ORIGIN = LocalProjection(20.99, 105.80)
TARGETS_MS = {"downsampled_track": 100.0, "route_compliance": 200.0}
FloatArray = npt.NDArray[np.float64]


# ---------------------------------------------------------------- the data


@dataclass(frozen=True, slots=True)
class Drive:
    """A truck's simulated track: fix times and positions, and each stop's stay."""

    t_s: FloatArray  # from the track's start
    lat: FloatArray
    lon: FloatArray
    speed_kmh: FloatArray
    path_xy: FloatArray
    stop_offsets_m: FloatArray
    arrivals_s: FloatArray
    dwells_s: FloatArray


def street_path(rng: np.random.Generator) -> FloatArray:
    """A street walk: short straight pieces turning now and then, like road geometry."""
    headings = np.cumsum(rng.choice([0.0, 0.0, 0.0, np.pi / 2, -np.pi / 2], PATH_VERTICES - 1))
    steps = rng.uniform(10.0, 40.0, PATH_VERTICES - 1)
    xy = np.zeros((PATH_VERTICES, 2))
    xy[1:, 0] = np.cumsum(np.cos(headings) * steps)
    xy[1:, 1] = np.cumsum(np.sin(headings) * steps)
    return xy


def simulate(
    rng: np.random.Generator, fix_count: int, lead_s: float, tail_s: float, lunch_s: float = 0.0
) -> Drive:
    """Park ``lead_s``, serve ``STOPS`` stops along a street path (parking ``lunch_s`` at the
    middle one), park ``tail_s``: the speed is whatever fits the rest of ``fix_count`` fixes.
    A standing unit repeats its position (static navigation); a moving one is off by
    ``NOISE_M``."""
    path_xy = street_path(rng)
    along_m = np.concatenate(([0.0], np.cumsum(np.hypot(*np.diff(path_xy, axis=0).T))))
    stop_offsets_m = np.sort(rng.uniform(50.0, along_m[-1] - 50.0, STOPS))
    dwells_s = rng.uniform(30.0, 90.0, STOPS)
    dwells_s[STOPS // 2] += lunch_s
    span_s = fix_count * INTERVAL_S
    speed_m_s = along_m[-1] / (span_s - lead_s - tail_s - dwells_s.sum())
    times, offsets, arrivals = [0.0, lead_s], [0.0, 0.0], []
    for offset_m, dwell_s in zip(stop_offsets_m, dwells_s, strict=True):
        arrival_s = times[-1] + (offset_m - offsets[-1]) / speed_m_s
        arrivals.append(arrival_s)
        times += [arrival_s, arrival_s + dwell_s]
        offsets += [offset_m, offset_m]
    times += [times[-1] + (along_m[-1] - offsets[-1]) / speed_m_s, span_s]
    offsets += [along_m[-1], along_m[-1]]
    t_s = np.arange(fix_count, dtype=np.float64) * INTERVAL_S
    offset_m = np.interp(t_s, times, offsets)
    xy = np.column_stack(
        (np.interp(offset_m, along_m, path_xy[:, 0]), np.interp(offset_m, along_m, path_xy[:, 1]))
    )
    moving = np.gradient(offset_m) > 0
    xy[moving] += rng.normal(0.0, NOISE_M / np.sqrt(2), (int(moving.sum()), 2))
    xy[JUMP_EVERY_FIXES // 2 :: JUMP_EVERY_FIXES] += 2000.0  # GPS jumps, 2 km off for a fix
    speed_kmh = np.where(moving, speed_m_s * 3.6 + rng.normal(0, 1.5, fix_count), 0.0)
    latlon = ORIGIN.to_latlon_array(xy)
    return Drive(
        t_s,
        latlon[:, 0],
        latlon[:, 1],
        np.clip(speed_kmh, 0, None),
        path_xy,
        stop_offsets_m,
        np.array(arrivals),
        dwells_s,
    )


def position_rows(drive: Drive, start: dt.datetime, tenant_id: int, device_id: int) -> list[Any]:
    rows = []
    for n in range(drive.t_s.size):
        at = start + dt.timedelta(seconds=float(drive.t_s[n]))
        speed = float(drive.speed_kmh[n])
        rows.append(
            (
                device_id,
                at,
                tenant_id,
                at,
                float(drive.lat[n]),
                float(drive.lon[n]),
                speed,
                90.0,
                5.0,
                None,
                9,
                n,
                True,
                90,
                None,
                "native",
            )
        )
    return rows


@dataclass(frozen=True, slots=True)
class Loaded:
    tenant_id: int
    day_vehicles: tuple[tuple[int, int], ...]  # (vehicle_id, device_id)
    run_id: int
    local_date: dt.date
    now: dt.datetime


async def load(conn: psycopg.AsyncConnection[Any], vehicles: int) -> Loaded:
    rng = np.random.default_rng(7)
    local_date = dt.datetime.now(reports.LOCAL_ZONE).date() - dt.timedelta(days=1)
    day_start, _ = reports.local_day_bounds(local_date)
    tenant = await fleet.ensure_tenant(conn, "bench-reports", "Benchmark")
    day_vehicles = []
    for n in range(vehicles):
        vehicle_id = await fleet.create_vehicle(conn, tenant.id, f"29C-{n:05d}")
        unit = await fleet.create_device(
            conn, tenant, f"truck-{n}", fleet.DeviceKind.TRUCK, vehicle_id=vehicle_id
        )
        # Depot until ~05:00, collection, depot after ~20:00 (local).
        drive = simulate(rng, DAY_FIXES, lead_s=5 * 3600.0, tail_s=3.6 * 3600.0, lunch_s=3600.0)
        await write_positions(conn, position_rows(drive, day_start, tenant.id, unit.device.id))
        day_vehicles.append((vehicle_id, unit.device.id))
    run_id, now = await load_run(conn, rng, tenant, local_date)
    await conn.commit()
    return Loaded(tenant.id, tuple(day_vehicles), run_id, local_date, now)


async def load_run(
    conn: psycopg.AsyncConnection[Any],
    rng: np.random.Generator,
    tenant: fleet.Tenant,
    local_date: dt.date,
) -> tuple[int, dt.datetime]:
    """The route-run truck: its run, its 8,000 fixes, its visits and missed-stop alerts."""
    vehicle_id = await fleet.create_vehicle(conn, tenant.id, "29C-99999")
    unit = await fleet.create_device(
        conn, tenant, "truck-run", fleet.DeviceKind.TRUCK, vehicle_id=vehicle_id
    )
    drive = simulate(rng, RUN_FIXES, lead_s=600.0, tail_s=600.0)
    off = slice(3000, 3300)  # 25 minutes on a street 150 m off the path
    lat, lon = drive.lat.copy(), drive.lon.copy()
    lat[off] += 150.0 / 111_320.0
    start = dt.datetime.combine(local_date, dt.time(6), reports.LOCAL_ZONE).astimezone(dt.UTC)
    moved = dataclasses.replace(drive, lat=lat, lon=lon)
    await write_positions(conn, position_rows(moved, start, tenant.id, unit.device.id))
    points = await customers.ensure_service_points(
        conn,
        tenant.id,
        [
            customers.NewServicePoint(
                code=f"KH{n}", name=f"Hộ {n}", kind="household", lat=20.99, lon=105.8
            )
            for n in range(1, STOPS + 1)
        ],
    )
    path_xy = drive.path_xy
    path_latlon = ORIGIN.to_latlon_array(path_xy)
    arrivals = [start + dt.timedelta(seconds=float(s)) for s in drive.arrivals_s]
    stops = []
    for n in range(STOPS):
        x, y = (float(v) for v in point_at(path_xy, float(drive.stop_offsets_m[n])))
        stop_lat, stop_lon = ORIGIN.to_latlon(x, y)
        windowed = n % 10 == 0
        stops.append(
            planning.RouteStop(
                seq=n + 1,
                kind=planning.StopKind.COLLECT,
                service_point_id=points[f"KH{n + 1}"],
                lat=stop_lat,
                lon=stop_lon,
                path_offset_m=float(drive.stop_offsets_m[n]),
                planned_arrival=arrivals[n],
                window_end=arrivals[n] + dt.timedelta(minutes=30) if windowed else None,
                dwell_radius_m=30,
            )
        )
    path_m = float(np.hypot(*np.diff(path_xy, axis=0).T).sum())
    run_id = await planning.create_route_run(
        conn,
        tenant.id,
        planning.NewRouteRun(
            vehicle_id=vehicle_id,
            local_date=local_date,
            name="Tuyến đo",
            planned_start=start,
            planned_end=start + dt.timedelta(seconds=RUN_FIXES * INTERVAL_S),
            corridor_m=50,
            expected_path=tuple((float(p[1]), float(p[0])) for p in path_latlon),
            path_length_m=path_m,
            source=planning.RunSource.MANUAL,
            stops=tuple(stops),
        ),
    )
    await record_evidence(conn, rng, tenant.id, vehicle_id, unit.device.id, run_id, stops, drive)
    return run_id, start + dt.timedelta(seconds=RUN_FIXES * INTERVAL_S + 3 * 3600)


def point_at(path_xy: FloatArray, offset_m: float) -> FloatArray:
    along = np.concatenate(([0.0], np.cumsum(np.hypot(*np.diff(path_xy, axis=0).T))))
    return np.array(
        [np.interp(offset_m, along, path_xy[:, 0]), np.interp(offset_m, along, path_xy[:, 1])]
    )


async def record_evidence(
    conn: psycopg.AsyncConnection[Any],
    rng: np.random.Generator,
    tenant_id: int,
    vehicle_id: int,
    device_id: int,
    run_id: int,
    stops: Sequence[planning.RouteStop],
    drive: Drive,
) -> None:
    """A visit per served stop (1 in 20 only probable, windowed ones late now and then) and
    a missed_stop alert per skipped one (1 in 25)."""
    visits, signals = [], []
    for n, stop in enumerate(stops):
        arrival = stop.planned_arrival
        if rng.random() < 0.04:
            signals.append(
                alerts.AlertSignal(
                    change=alerts.Change.OPENED,
                    key=f"missed:{run_id}:{stop.seq}",
                    kind=alerts.AlertKind.MISSED_STOP,
                    severity=alerts.Severity.CRITICAL,
                    tenant_id=tenant_id,
                    device_id=device_id,
                    vehicle_id=vehicle_id,
                    route_run_id=run_id,
                    stop_seq=stop.seq,
                    at=arrival + dt.timedelta(minutes=2),
                    message=f"Xe bỏ sót điểm {stop.seq}",
                )
            )
            continue
        probable = rng.random() < 0.05
        late = stop.window_end is not None and rng.random() < 0.3
        visits.append(
            alerts.StopVisit(
                tenant_id=tenant_id,
                route_run_id=run_id,
                stop_seq=stop.seq,
                vehicle_id=vehicle_id,
                device_id=device_id,
                service_point_id=stop.service_point_id,
                status=alerts.VisitStatus.PROBABLE if probable else alerts.VisitStatus.VISITED,
                evidence=alerts.VisitEvidence.SLOW_PASS if probable else alerts.VisitEvidence.DWELL,
                arrival_at=arrival,
                departure_at=arrival + dt.timedelta(seconds=float(drive.dwells_s[n])),
                dwell_s=float(drive.dwells_s[n]),
                closest_m=4.0,
                lat=stop.lat,
                lon=stop.lon,
                late=late,
            )
        )
    await alerts.record_visits(conn, visits)
    await alerts.apply_signals(conn, signals)


# ---------------------------------------------------------------- the timing


@dataclass(frozen=True, slots=True)
class Spread:
    p50_ms: float
    p99_ms: float
    max_ms: float

    def __str__(self) -> str:
        return f"p50 {self.p50_ms:7.1f}  p99 {self.p99_ms:7.1f}  max {self.max_ms:7.1f} ms"


def spread(values_s: Sequence[float]) -> Spread:
    values_ms = sorted(v * 1000 for v in values_s)
    cuts = statistics.quantiles(values_ms, n=100, method="inclusive")
    return Spread(cuts[49], cuts[98], values_ms[-1])


async def timed(runs: int, call: Callable[[int], Awaitable[object]]) -> tuple[Spread, object]:
    """``call(n)`` once to warm up, then ``runs`` times timed."""
    result = await call(0)
    durations = []
    for n in range(runs):
        began = time.perf_counter()
        result = await call(n)
        durations.append(time.perf_counter() - began)
    return spread(durations), result


def verdict(name: str, measured: Spread) -> str:
    target_ms = TARGETS_MS[name]
    met = "met" if measured.p99_ms <= target_ms else "MISSED"
    return f"(target p99 <= {target_ms:.0f} ms: {met})"


def timed_pure(runs: int, call: Callable[[], object]) -> Spread:
    """``call()`` once to warm up, then ``runs`` times timed."""
    call()
    durations = []
    for _ in range(runs):
        began = time.perf_counter()
        call()
        durations.append(time.perf_counter() - began)
    return spread(durations)


async def measure(
    conn: psycopg.AsyncConnection[Any], loaded: Loaded, args: argparse.Namespace
) -> None:
    backend = await detect_backend(conn)
    day_start, day_end = reports.local_day_bounds(loaded.local_date)
    tenant_id, vehicles = loaded.tenant_id, loaded.day_vehicles

    def vehicle(n: int) -> tuple[int, int]:
        return vehicles[n % len(vehicles)]

    async def track(n: int) -> object:
        return await downsampled_track(
            conn, tenant_id, [vehicle(n)[1]], day_start, day_end, args.bucket_s, backend
        )

    async def raw_fixes(n: int) -> object:
        return await track_fixes(conn, tenant_id, [vehicle(n)[1]], day_start, day_end)

    async def day(n: int) -> object:
        return await reports.vehicle_day(conn, tenant_id, vehicle(n)[0], loaded.local_date)

    async def compliance(n: int) -> object:
        return await reports.route_compliance(conn, tenant_id, loaded.run_id, loaded.now)

    fixes = await track_fixes(conn, tenant_id, [vehicle(0)[1]], day_start, day_end)
    summarise_spread = timed_pure(args.runs, lambda: reports.summarise(fixes))

    track_spread, points = await timed(args.runs, track)
    fixes_spread, _ = await timed(args.runs, raw_fixes)
    day_spread, vehicle_report = await timed(args.runs, day)
    compliance_spread, run_report = await timed(args.runs, compliance)
    assert isinstance(points, list)
    assert isinstance(vehicle_report, reports.VehicleDay)
    assert isinstance(run_report, reports.RouteCompliance)
    summary = vehicle_report.summary
    corridor = run_report.corridor
    print(
        f"\nREPORTS ({time.strftime('%Y-%m-%d %H:%M')}; positions backend {backend};"
        f" {args.runs} timed runs after one warm-up, one connection)"
    )
    print(
        f"  downsampled_track ({args.bucket_s} s buckets, one vehicle-day of"
        f" {summary.fix_count:,} fixes -> {len(points):,} points):  {track_spread}"
        f"  {verdict('downsampled_track', track_spread)}"
    )
    print(
        f"  vehicle_day ({len(vehicle_report.trips)} trips, {len(vehicle_report.parkings)}"
        f" parkings, {summary.distance_m / 1000:.1f} km, {summary.jump_fix_count} jumps"
        f" left out):  {day_spread}"
    )
    print(f"    of which reading the {summary.fix_count:,} fixes (track_fixes):  {fixes_spread}")
    print(f"    of which summarise (pure):  {summarise_spread}")
    counts = ", ".join(f"{status} {count}" for status, count in run_report.status_counts.items())
    share = "none" if corridor.inside_share is None else f"{corridor.inside_share:.3f}"
    print(
        f"  route_compliance ({run_report.collect_stop_count} stops: {counts};"
        f" {corridor.fix_count:,} fixes, {corridor.distance_total_m / 1000:.1f} km,"
        f" inside share {share}):  {compliance_spread}"
        f"  {verdict('route_compliance', compliance_spread)}"
    )
    await pure_compliance(conn, loaded, args.runs)


async def pure_compliance(conn: psycopg.AsyncConnection[Any], loaded: Loaded, runs: int) -> None:
    """The compliance report's pure part alone, on what route_compliance reads."""
    run = await sources.route_run(conn, loaded.tenant_id, loaded.run_id)
    visits = await alerts.list_visits(conn, loaded.tenant_id, loaded.run_id)
    run_alerts = await sources.run_alerts(conn, loaded.tenant_id, loaded.run_id)
    since, until = reports.track_window(run, visits, loaded.now)
    device_ids = await sources.vehicle_device_ids(conn, loaded.tenant_id, run.vehicle_id)
    fixes = await track_fixes(conn, loaded.tenant_id, device_ids, since, until)
    assess_spread = timed_pure(
        runs, lambda: reports.assess_compliance(run, visits, run_alerts, fixes, loaded.now)
    )
    print(
        f"    of which assess_compliance (pure, {len(run.expected_path):,}-vertex path):"
        f"  {assess_spread}"
    )


# ---------------------------------------------------------------- start to end


@contextlib.asynccontextmanager
async def bench_database(server_url: str) -> AsyncIterator[str]:
    name = f"sanitrack_bench_reports_{secrets.token_hex(4)}"
    async with await psycopg.AsyncConnection.connect(server_url, autocommit=True) as conn:
        await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
    try:
        await apply_migrations(url)
        async with await psycopg.AsyncConnection.connect(url) as conn:
            await maintain(conn, load_settings().positions, dt.datetime.now(dt.UTC))
        yield url
    finally:
        async with await psycopg.AsyncConnection.connect(server_url, autocommit=True) as conn:
            await conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        print(f"dropped database {name}", flush=True)


async def run(args: argparse.Namespace) -> None:
    async with bench_database(args.server_url) as url:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            began = time.monotonic()
            loaded = await load(conn, args.vehicles)
            await conn.execute("ANALYZE")
            await conn.commit()
            print(
                f"loaded {args.vehicles} vehicle-days and a route run in"
                f" {time.monotonic() - began:.0f} s",
                flush=True,
            )
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await measure(conn, loaded, args)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.reports", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--runs", type=int, default=50, help="timed calls of each report")
    parser.add_argument("--vehicles", type=int, default=10, help="vehicle-days loaded")
    parser.add_argument("--bucket-s", type=int, default=30, help="downsampling bucket")
    parser.add_argument(
        "--server-url",
        default=os.environ.get("SANITRACK_BENCH_DATABASE_URL", DEFAULT_SERVER_URL),
        help="a PostgreSQL URL; the benchmark's database is created on its server",
    )
    args = parser.parse_args(argv)
    if args.runs < 2 or args.vehicles < 1:
        parser.error("--runs: at least 2; --vehicles: at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    main()
