"""A route run made ready for tracking: its path and stops in the local metric projection,
times as epoch seconds (the tracker's hot path compares floats, not datetimes)."""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from geo import LocalProjection
from planning import RouteRun, RunStatus, StopKind
from tracker.path import PathIndex


@dataclass(frozen=True, slots=True)
class TrackedStop:
    seq: int
    collect: bool  # a collection point (else an unload at a site)
    service_point_id: int | None
    x: float
    y: float
    lat: float
    lon: float
    offset_m: float  # along the expected path
    radius_m: float
    planned_arrival_s: float
    window_start_s: float | None
    window_end_s: float | None
    service_s: float = 0.0  # planned service time (0: the plan does not say)


@dataclass(frozen=True, slots=True)
class TrackedRun:
    id: int
    tenant_id: int
    vehicle_id: int
    name: str
    planned_start_s: float
    planned_end_s: float
    corridor_m: float
    status: RunStatus
    path: PathIndex
    stops: tuple[TrackedStop, ...]
    stop_offsets: tuple[float, ...]  # sorted, for bisect
    max_radius_m: float
    first_window_end_s: float | None  # the earliest window end of a collect stop
    crew: tuple[int, ...]  # staff ids: driver first
    stop_grid: dict[tuple[int, int], list[int]]  # cell -> stops within reach of it
    stop_cell_m: float
    # The plan's driving pace (s/m) on each leg: from the path's start to the first stop,
    # then between consecutive stops (NaN where the plan's times do not tell).
    leg_pace_s_per_m: tuple[float, ...] = ()
    # Stretches: runs of consecutive collect stops, each within twice the larger radius of
    # the one before (a truck standing at one may be serving the next): what sparse, noisy
    # fixes can still time as a whole. (first, last) stop indexes; stretch_of gives each
    # stop's stretch, -1 for an unload.
    stretches: tuple[tuple[int, int], ...] = ()
    stretch_of: tuple[int, ...] = ()

    @property
    def length_m(self) -> float:
        return self.path.length_m

    def stops_near(self, x: float, y: float) -> list[int]:
        """Indexes of the stops that may be within twice their radius of ``(x, y)``."""
        cell = self.stop_cell_m
        return self.stop_grid.get((math.floor(x / cell), math.floor(y / cell)), _NO_STOPS)

    def planned_drive_s(self, low_m: float, high_m: float) -> float:
        """How long the plan takes to drive the path from ``low_m`` to ``high_m``, service
        excluded; NaN when part of it lies on a leg whose pace the plan does not tell."""
        offsets, paces = self.stop_offsets, self.leg_pace_s_per_m
        if high_m <= low_m:
            return 0.0
        if not paces or high_m > offsets[-1]:
            return math.nan  # after the last stop: the way back, unloads, not timed
        total_s = 0.0
        leg = bisect.bisect_right(offsets, low_m)
        start_m = low_m
        while start_m < high_m:
            end_m = min(high_m, offsets[leg])
            if end_m > start_m:
                total_s += (end_m - start_m) * paces[leg]  # NaN spreads
            start_m, leg = end_m, leg + 1
        return total_s

    def stops_between(self, low_m: float, high_m: float) -> range:
        """Indexes of the stops whose path offset lies in [low_m, high_m]."""
        return range(
            bisect.bisect_left(self.stop_offsets, low_m),
            bisect.bisect_right(self.stop_offsets, high_m),
        )


def track_run(run: RouteRun, projection: LocalProjection) -> TrackedRun:
    path = PathIndex([projection.to_xy(lat, lon) for lon, lat in run.expected_path])
    # The path was measured by its planner (on the sphere, or in another projection): put
    # the stops on this index's scale so progress and stop offsets compare.
    scale = path.length_m / run.path_length_m if run.path_length_m > 0 else 1.0
    stops = []
    for stop in run.stops:
        x, y = projection.to_xy(stop.lat, stop.lon)
        stops.append(
            TrackedStop(
                seq=stop.seq,
                collect=stop.kind is StopKind.COLLECT,
                service_point_id=stop.service_point_id,
                x=x,
                y=y,
                lat=stop.lat,
                lon=stop.lon,
                offset_m=stop.path_offset_m * scale,
                radius_m=stop.dwell_radius_m,
                planned_arrival_s=stop.planned_arrival.timestamp(),
                window_start_s=stop.window_start.timestamp() if stop.window_start else None,
                window_end_s=stop.window_end.timestamp() if stop.window_end else None,
                service_s=float(stop.service_s),
            )
        )
    # Each stop is listed in the cells that come within twice its radius of it, so the one
    # cell of a point lists every stop the point may be near, and few others.
    cell = 25.0
    grid: dict[tuple[int, int], list[int]] = {}
    for index, tracked in enumerate(stops):
        x, y, reach = tracked.x, tracked.y, 2 * tracked.radius_m
        for i in range(math.floor((x - reach) / cell), math.floor((x + reach) / cell) + 1):
            for j in range(math.floor((y - reach) / cell), math.floor((y + reach) / cell) + 1):
                nearest_x = min(max(x, i * cell), (i + 1) * cell)
                nearest_y = min(max(y, j * cell), (j + 1) * cell)
                if math.hypot(nearest_x - x, nearest_y - y) <= reach:
                    grid.setdefault((i, j), []).append(index)
    stretches, stretch_of = _stretches(stops)
    driver_first = sorted(run.crew, key=lambda member: (member.role != "driver", member.staff_id))
    return TrackedRun(
        id=run.id,
        tenant_id=run.tenant_id,
        vehicle_id=run.vehicle_id,
        name=run.name,
        planned_start_s=run.planned_start.timestamp(),
        planned_end_s=run.planned_end.timestamp(),
        corridor_m=run.corridor_m,
        status=run.status,
        path=path,
        stops=tuple(stops),
        stop_offsets=tuple(s.offset_m for s in stops),
        max_radius_m=max((s.radius_m for s in stops), default=0.0),
        first_window_end_s=min(
            (s.window_end_s for s in stops if s.collect and s.window_end_s is not None),
            default=None,
        ),
        crew=tuple(member.staff_id for member in driver_first),
        stop_grid=grid,
        stop_cell_m=cell,
        leg_pace_s_per_m=_leg_paces(stops, run.planned_start.timestamp()),
        stretches=stretches,
        stretch_of=stretch_of,
    )


def _stretches(
    stops: list[TrackedStop],
) -> tuple[tuple[tuple[int, int], ...], tuple[int, ...]]:
    stretches: list[tuple[int, int]] = []
    stretch_of = []
    previous = None
    for index, stop in enumerate(stops):
        if not stop.collect:
            stretch_of.append(-1)
            previous = None
            continue
        reach_m = 2 * max(stop.radius_m, previous.radius_m) if previous else 0.0
        if previous is not None and math.hypot(stop.x - previous.x, stop.y - previous.y) <= reach_m:
            stretches[-1] = (stretches[-1][0], index)
        else:
            stretches.append((index, index))
        stretch_of.append(len(stretches) - 1)
        previous = stop
    return tuple(stretches), tuple(stretch_of)


def _leg_paces(stops: list[TrackedStop], planned_start_s: float) -> tuple[float, ...]:
    """Seconds per metre the plan allows for driving each leg: the time between one stop's
    planned arrival and the next, less the first one's service, over the path between them.
    A leg between stops at one place takes no time; one with no driving time left says
    nothing (NaN)."""
    paces = []
    before_m, free_s = 0.0, planned_start_s
    for stop in stops:
        length_m = stop.offset_m - before_m
        drive_s = stop.planned_arrival_s - free_s
        if length_m < 1.0:
            paces.append(0.0)
        else:
            paces.append(drive_s / length_m if drive_s > 0 else math.nan)
        before_m, free_s = stop.offset_m, stop.planned_arrival_s + stop.service_s
    return tuple(paces)


_NO_STOPS: list[int] = []
