"""A small synthetic world for the rules tests: one tenant, one truck, one route run laid
out in metres around a local projection, a depot beside the route, and helpers that drive
the truck along x/y waypoints and play its fixes into a ``RulesEngine`` with a clock sweep.

No database and no broker: the engine is pure, so a timeline written in a test is the whole
input.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import fleet
import planning
from alerts import AlertKind, AlertSignal, Change, StopVisit
from geo import LocalProjection
from rules import FixInput, Outcome, RulesEngine, stored_keys
from rules.engine import DeviceContext
from rules.stops import StopsState
from sanitrack.settings import RulesSettings
from tracker import GeofenceIndex, PathIndex, RunProgress, TrackedRun, track_run

PROJECTION = LocalProjection(20.97, 105.78)
T0 = dt.datetime(2026, 12, 7, 23, 0, tzinfo=dt.UTC)  # 06:00 in Hà Nội
START_S = T0.timestamp()
TENANT_ID = 1
DEVICE_ID = 7
VEHICLE_ID = 3
RUN_ID = 11
DEPOT_ID = 21
LABEL = "29C-10001"
SERVICE_POINT_BASE = 100  # stop seq n collects service point 100 + n

# East along a street for 1200 m, then north for 600 m.
MAIN_PATH: tuple[tuple[float, float], ...] = ((0.0, 0.0), (1200.0, 0.0), (1200.0, 600.0))
MAIN_STOPS_M: tuple[float, ...] = (250.0, 1000.0, 1500.0)
# South of the street, from x 500 to 800: its north edge 20 m from the street's axis.
DEPOT_XY: tuple[tuple[float, float], ...] = (
    (500.0, -300.0),
    (800.0, -300.0),
    (800.0, -20.0),
    (500.0, -20.0),
)

# A dead-end alley: east 400 m, north into the alley 200 m and out again, on east 400 m.
ALLEY_PATH: tuple[tuple[float, float], ...] = (
    (0.0, 0.0),
    (400.0, 0.0),
    (400.0, 200.0),
    (400.0, 0.0),
    (800.0, 0.0),
)
# A street driven twice: out 400 m, round a 200 m block, back along the same street.
TWICE_PATH: tuple[tuple[float, float], ...] = (
    (0.0, 0.0),
    (400.0, 0.0),
    (400.0, 200.0),
    (600.0, 200.0),
    (600.0, 0.0),
    (400.0, 0.0),
    (0.0, 0.0),
)
# Two laps of a 300 m block (a loop route that ends where it started).
LOOP_PATH: tuple[tuple[float, float], ...] = (
    *((0.0, 0.0), (300.0, 0.0), (300.0, 300.0), (0.0, 300.0)) * 2,
    (0.0, 0.0),
)


def kmh(speed_kmh: float) -> float:
    """Metres per second."""
    return speed_kmh / 3.6


@dataclass(frozen=True)
class StopSpec:
    offset_m: float
    window_end_s: float | None = None  # seconds after the run's planned start
    window_start_s: float | None = None
    collect: bool = True
    service_s: int = 0  # planned; the plan's arrivals leave this much time at each stop


@dataclass
class Log:
    """Everything the engine said, in the order it said it."""

    signals: list[AlertSignal] = field(default_factory=list)
    visits: list[StopVisit] = field(default_factory=list)
    # The time of the fix (or sweep) each signal came out of, beside ``signals``.
    emitted_at: list[float] = field(default_factory=list)

    def add(self, out: Outcome, now: float) -> Outcome:
        self.signals.extend(out.signals)
        self.emitted_at.extend(now for _ in out.signals)
        self.visits.extend(out.visits)
        return out

    def when(self, signal: AlertSignal) -> float:
        """When ``signal`` was emitted (the fix or sweep time)."""
        return self.emitted_at[next(i for i, s in enumerate(self.signals) if s is signal)]

    def of(self, kind: AlertKind) -> list[AlertSignal]:
        return [s for s in self.signals if s.kind is kind]

    def stored_key(self, key: str) -> str:
        """The key the store holds the alert under (``signals.stored_keys``)."""
        return stored_keys(self.signals)(key)

    def open_missed(self) -> set[int]:
        """The stops with a missed_stop alert opened and not resolved (or withdrawn)."""
        missed = self.of(AlertKind.MISSED_STOP)
        stored = stored_keys(self.signals)
        resolved = {stored(s.key) for s in missed if s.change is Change.RESOLVED}
        return {
            s.stop_seq
            for s in missed
            if s.change is Change.OPENED
            and stored(s.key) not in resolved
            and s.stop_seq is not None
        }

    def changes(self, kind: AlertKind) -> list[Change]:
        return [s.change for s in self.of(kind)]

    def keyed(self) -> set[tuple[str, Change]]:
        """The alert changes said, by the key the store holds each alert under."""
        stored = stored_keys(self.signals)
        return {(stored(s.key), s.change) for s in self.signals}

    def visits_of(self, seq: int) -> list[StopVisit]:
        return [v for v in self.visits if v.stop_seq == seq]


@dataclass
class World:
    projection: LocalProjection
    settings: RulesSettings
    run: planning.RouteRun
    tracked: TrackedRun
    engine: RulesEngine
    path: PathIndex  # the route's path in metres, as the test laid it out
    path_xy: tuple[tuple[float, float], ...]
    depot: fleet.Geofence
    log: Log = field(default_factory=Log)
    next_sweep: float | None = None  # the clock: the next whole second it sweeps at
    progress: list[tuple[float, float]] = field(default_factory=list)  # (t, progress_m)

    @property
    def start_s(self) -> float:
        return self.tracked.planned_start_s

    @property
    def end_s(self) -> float:
        return self.tracked.planned_end_s

    @property
    def context(self) -> DeviceContext:
        return self.engine.devices[DEVICE_ID]

    @property
    def current(self) -> RunProgress | None:
        return self.context.vehicle.current

    @property
    def stops_state(self) -> StopsState:
        return self.context.stops[RUN_ID]

    def stop_xy(self, seq: int) -> tuple[float, float]:
        stop = self.tracked.stops[seq - 1]
        return stop.x, stop.y

    def point(self, offset_m: float) -> tuple[float, float]:
        return self.path.point_at(offset_m)

    def points(self, from_m: float, to_m: float) -> list[tuple[float, float]]:
        """The path's points from ``from_m`` to ``to_m`` (forward), corners included."""
        corners = []
        cumulative = 0.0
        vertices = self.path_xy
        for a, b in itertools.pairwise(vertices):
            cumulative += math.hypot(b[0] - a[0], b[1] - a[1])
            if from_m < cumulative < to_m:
                corners.append(b)
        return [self.point(from_m), *corners, self.point(to_m)]

    def fix(
        self,
        t: float,
        x: float,
        y: float,
        speed_kmh: float | None = 0.0,
        accuracy_m: float | None = 10.0,
        ignition: bool | None = True,
    ) -> FixInput:
        lat, lon = self.projection.to_latlon(x, y)
        return FixInput(t, lat, lon, speed_kmh, accuracy_m, ignition)

    def xy(self, fix: FixInput) -> tuple[float, float]:
        return self.projection.to_xy(fix.lat, fix.lon)

    def off_path_m(self, fix: FixInput) -> float:
        x, y = self.xy(fix)
        return self.path.locate(x, y).distance_m

    # -- the clock and the feed --------------------------------------------------------------

    def tick(self, now: float, step_s: float = 1.0) -> None:
        """Sweep every ``step_s`` of clock time up to ``now``, and at ``now`` itself when
        that is a whole second (the clock sweeps every second of fix time)."""
        if self.next_sweep is None:
            self.next_sweep = float(math.floor(now))
        while self.next_sweep <= now:
            self.log.add(self.engine.sweep(self.next_sweep), self.next_sweep)
            self.next_sweep += step_s
        if step_s > 1.0 and now == math.floor(now) and self.next_sweep - step_s < now:
            self.log.add(self.engine.sweep(now), now)
            self.next_sweep = now + 1.0

    def feed(self, fix: FixInput) -> Outcome:
        """One fix, after the sweeps the clock made before it arrived: the clock follows the
        newest fix delivered and never goes back for a late one."""
        self.tick(fix.t - 1e-6)
        out = self.log.add(self.engine.on_fix(DEVICE_ID, fix), fix.t)
        current = self.current
        if current is not None and current.started:
            self.progress.append((fix.t, current.progress_m))
        return out

    def play(self, fixes: Iterable[FixInput], until: float | None = None) -> Log:
        for fix in fixes:
            self.feed(fix)
        if until is not None:
            self.tick(until)
        return self.log


def make_world(
    path: Sequence[tuple[float, float]] = MAIN_PATH,
    stops: Sequence[StopSpec | float] = MAIN_STOPS_M,
    *,
    settings: RulesSettings | None = None,
    duration_s: float = 3600.0,
    corridor_m: float = 50.0,
    dwell_radius_m: float = 30.0,
    depot: Sequence[tuple[float, float]] = DEPOT_XY,
) -> World:
    """The world, with the engine loaded as the service loads it (tenant, geofences, device
    with its run of the day)."""
    settings = settings or RulesSettings()
    projection = PROJECTION
    index = PathIndex(path)
    specs = [spec if isinstance(spec, StopSpec) else StopSpec(spec) for spec in stops]
    route_stops = []
    served_s = 0.0  # planned service before each stop
    for seq, spec in enumerate(specs, start=1):
        x, y = index.point_at(spec.offset_m)
        lat, lon = projection.to_latlon(x, y)
        window_start = window_end = None
        if spec.window_end_s is not None:
            window_end = T0 + dt.timedelta(seconds=spec.window_end_s)
            window_start = T0 + dt.timedelta(seconds=spec.window_start_s or 0.0)
        route_stops.append(
            planning.RouteStop(
                seq=seq,
                kind=planning.StopKind.COLLECT if spec.collect else planning.StopKind.UNLOAD,
                service_point_id=SERVICE_POINT_BASE + seq if spec.collect else None,
                lat=lat,
                lon=lon,
                path_offset_m=spec.offset_m,
                # 5 m/s along the path: arrivals in the order of the offsets
                planned_arrival=T0 + dt.timedelta(seconds=spec.offset_m / 5.0 + served_s),
                window_start=window_start,
                window_end=window_end,
                dwell_radius_m=dwell_radius_m,
                service_s=spec.service_s,
            )
        )
        served_s += spec.service_s
    expected_path = tuple((lon, lat) for lat, lon in (projection.to_latlon(x, y) for x, y in path))
    run = planning.RouteRun(
        id=RUN_ID,
        tenant_id=TENANT_ID,
        vehicle_id=VEHICLE_ID,
        local_date=dt.date(2026, 12, 8),
        name="Tuyến thử 1",
        planned_start=T0,
        planned_end=T0 + dt.timedelta(seconds=duration_s),
        corridor_m=corridor_m,
        expected_path=expected_path,
        path_length_m=index.length_m,
        status=planning.RunStatus.ACTIVE,
        source=planning.RunSource.MANUAL,
        stops=tuple(route_stops),
        crew=(
            planning.CrewMember(staff_id=52, role=planning.CrewRole.COLLECTOR),
            planning.CrewMember(staff_id=51, role=planning.CrewRole.DRIVER),
        ),
    )
    tracked = track_run(run, projection)
    ring = tuple(projection.to_latlon(x, y) for x, y in (*depot, depot[0]))
    depot_fence = fleet.Geofence(
        DEPOT_ID, TENANT_ID, "Bãi xe Tây Mỗ", fleet.GeofenceKind.DEPOT, ring
    )
    engine = RulesEngine(settings)
    engine.set_tenant(TENANT_ID, projection, GeofenceIndex([depot_fence], projection))
    engine.set_device(DEVICE_ID, TENANT_ID, VEHICLE_ID, LABEL, (tracked,))
    return World(projection, settings, run, tracked, engine, index, tuple(path), depot_fence)


# -- driving ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Piece:
    t0: float
    t1: float
    x0: float
    y0: float
    x1: float
    y1: float
    speed_kmh: float


class Trip:
    """Where a truck is at every moment: straight legs at a speed, and stands.

    ``fixes`` samples it every ``every_s`` seconds. At the instant a leg ends and the next
    begins the next one is reported, except that a stand includes both its ends (speed 0
    at the instant the truck stops and at the instant it starts): a stand of D seconds
    sampled in phase gives stopped fixes D seconds apart.
    """

    def __init__(self, start_t: float, x: float, y: float) -> None:
        self.start_t = start_t
        self.t = start_t
        self.x = x
        self.y = y
        self._pieces: list[_Piece] = []

    def to(self, x: float, y: float, speed_kmh: float) -> Trip:
        distance = math.hypot(x - self.x, y - self.y)
        if distance > 0:
            duration = distance / kmh(speed_kmh)
            self._pieces.append(_Piece(self.t, self.t + duration, self.x, self.y, x, y, speed_kmh))
            self.t += duration
            self.x, self.y = x, y
        return self

    def via(self, points: Iterable[tuple[float, float]], speed_kmh: float) -> Trip:
        for x, y in points:
            self.to(x, y, speed_kmh)
        return self

    def stand(self, seconds: float) -> Trip:
        self._pieces.append(_Piece(self.t, self.t + seconds, self.x, self.y, self.x, self.y, 0.0))
        self.t += seconds
        return self

    def at(self, t: float) -> tuple[float, float, float]:
        """(x, y, speed_kmh) at ``t``, within the trip."""
        starts = [p.t0 for p in self._pieces]
        index = max(0, bisect.bisect_right(starts, t) - 1)
        piece = self._pieces[index]
        if index > 0 and t == piece.t0 and self._pieces[index - 1].speed_kmh == 0.0:
            piece = self._pieces[index - 1]  # the instant a stand ends: still standing
        span = piece.t1 - piece.t0
        share = min(max((t - piece.t0) / span, 0.0), 1.0) if span > 0 else 0.0
        return (
            piece.x0 + (piece.x1 - piece.x0) * share,
            piece.y0 + (piece.y1 - piece.y0) * share,
            piece.speed_kmh,
        )

    def times(self, every_s: float, start_t: float | None = None) -> list[float]:
        begin = self.start_t if start_t is None else start_t
        count = math.floor((self.t - begin) / every_s + 1e-9)
        return [begin + k * every_s for k in range(count + 1)]

    def fixes(
        self,
        projection: LocalProjection = PROJECTION,
        every_s: float = 5.0,
        *,
        start_t: float | None = None,
        rng: random.Random | None = None,
        noise_m: float = 0.0,
        noise: Sequence[tuple[float, float]] | None = None,
        accuracy_m: float | None = 10.0,
        ignition: bool | None = True,
        report_speed: bool = True,
    ) -> list[FixInput]:
        """A fix every ``every_s``. Noise: ``noise`` gives each fix's (dx, dy) (cycled);
        else, with ``rng``, a point uniform in a disc of ``noise_m``."""
        out = []
        for n, t in enumerate(self.times(every_s, start_t)):
            x, y, speed = self.at(t)
            if noise:
                dx, dy = noise[n % len(noise)]
                x, y = x + dx, y + dy
            elif rng is not None and noise_m > 0:
                radius = noise_m * math.sqrt(rng.random())
                angle = rng.uniform(0.0, 2 * math.pi)
                x, y = x + radius * math.cos(angle), y + radius * math.sin(angle)
            lat, lon = projection.to_latlon(x, y)
            out.append(FixInput(t, lat, lon, speed if report_speed else None, accuracy_m, ignition))
        return out


def drive(
    waypoints: Sequence[tuple[float, float]],
    speed_kmh: float,
    start_t: float,
    every_s: float = 5.0,
    *,
    dwell: Mapping[int, float] | None = None,
    rng: random.Random | None = None,
    noise_m: float = 0.0,
    projection: LocalProjection = PROJECTION,
) -> list[FixInput]:
    """Drive through ``waypoints`` at ``speed_kmh`` from ``start_t``, standing
    ``dwell[i]`` seconds at waypoint ``i``; a fix every ``every_s``."""
    dwell = dwell or {}
    trip = Trip(start_t, *waypoints[0])
    for index, (x, y) in enumerate(waypoints):
        trip.to(x, y, speed_kmh)
        if dwell.get(index):
            trip.stand(dwell[index])
    return trip.fixes(projection, every_s, rng=rng, noise_m=noise_m)


@dataclass
class RouteTrip:
    """A trip along the route's own path, with the true path offset at every moment."""

    trip: Trip
    knots: list[tuple[float, float]]  # (t, offset_m), piecewise linear

    def offset_at(self, t: float) -> float:
        times = [k[0] for k in self.knots]
        index = bisect.bisect_right(times, t) - 1
        if index < 0:
            return self.knots[0][1]
        if index >= len(self.knots) - 1:
            return self.knots[-1][1]
        (t0, m0), (t1, m1) = self.knots[index], self.knots[index + 1]
        return m0 + (m1 - m0) * (t - t0) / (t1 - t0) if t1 > t0 else m1


def along_route(
    world: World,
    start_t: float,
    speed_kmh: float,
    *,
    dwell_s: Mapping[int, float] | None = None,
    from_m: float = 0.0,
    to_m: float | None = None,
) -> RouteTrip:
    """Drive the route's path from ``from_m`` to ``to_m`` at ``speed_kmh``, standing
    ``dwell_s[seq]`` at each stop ``seq`` on the way."""
    dwell_s = dwell_s or {}
    to_m = world.path.length_m if to_m is None else to_m
    trip = Trip(start_t, *world.point(from_m))
    knots = [(start_t, from_m)]
    here = from_m
    marks = sorted(
        (stop.offset_m, stop.seq)
        for stop in world.tracked.stops
        if from_m <= stop.offset_m <= to_m and dwell_s.get(stop.seq)
    )
    for offset, seq in [*marks, (to_m, 0)]:
        for x, y in world.points(here, offset)[1:]:
            # the points follow the path: the offset grows by the straight distance
            here += math.hypot(x - trip.x, y - trip.y)
            trip.to(x, y, speed_kmh)
            knots.append((trip.t, here))
        if seq:
            trip.stand(dwell_s[seq])
            knots.append((trip.t, offset))
    return RouteTrip(trip, knots)
