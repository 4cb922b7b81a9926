"""The planning problem as every solver engine and the feasibility checker read it.

Units are integers so that engines, the checker and the benchmark agree to the unit:
times are seconds from the plan's local midnight (``*_s``), distances metres (``*_m``;
a benchmark instance's own unit for VRPLIB data), loads whole units per capacity dimension
(kg, litres ...; ``Problem.dimensions`` names them).

The rules every engine keeps and ``planning.feasibility`` checks, written once here:

- A vehicle leaves its start site at ``Route.start_s`` (not before its shift starts) and
  drives the sequence of visits in order: jobs (collection stops) and dump visits.
- Travel from location a to b takes ``matrix.durations_s[a][b]``; it costs
  ``matrix.distances_m[a][b]``.
- Service at a visit starts at max(arrival, window start) and must start no later than the
  window's end; it lasts the job's ``service_s`` (a site's ``service_s`` at dumps). A job's
  service may not start before its ``release_s`` either: the trip that serves it must leave
  the start site or its last dump at or after ``release_s`` (orders known only then).
- Collection is a pickup: the load grows by each job's demand and must stay within the
  vehicle's capacity in every dimension, starting from ``initial_load`` (what a truck carries
  when it is re-planned mid-route); a dump visit empties the truck. A vehicle makes at
  most ``max_trips`` trips (trips = dump visits + 1 when it ends at an unloading site).
- The route ends at the end site no later than the shift's end, and its duration (end minus
  ``start_s``) is at most ``max_duration_s``. When the end site is not a place to unload
  (a garage), the truck must have emptied at a dump after its last job.
- A break (if any) of ``break_.duration_s`` is taken once, starting inside its window,
  between two visits; it pushes the rest of the route later.
- Every job is served by exactly one vehicle once, or reported unserved with a reason.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from planning.errors import InvalidValue

DAY_S = 86_400


class SiteKind(enum.StrEnum):
    DEPOT = "depot"  # where trucks are kept; never unloads
    DUMP = "dump"  # transfer station or landfill: a truck empties here and carries on
    DEPOT_DUMP = "depot_dump"  # a depot where trucks also unload (VRPLIB's depot)


@dataclass(frozen=True, slots=True)
class TimeWindow:
    start_s: int
    end_s: int

    def __post_init__(self) -> None:
        if self.end_s < self.start_s:
            raise InvalidValue(f"window: end {self.end_s} s is before start {self.start_s} s")

    def contains(self, t_s: int) -> bool:
        return self.start_s <= t_s <= self.end_s


@dataclass(frozen=True, slots=True)
class Job:
    """One collection stop: a service point due on the plan's date."""

    key: str  # the service point's code, or the instance's node number
    location: int  # row of the travel matrix
    demand: tuple[int, ...]  # one figure per capacity dimension
    service_s: int = 0
    window: TimeWindow | None = None
    release_s: int = 0
    service_point_id: int | None = None
    area: str = ""  # the địa bàn it belongs to, for area-based assignment

    def __post_init__(self) -> None:
        if self.location < 0:
            raise InvalidValue(f"job {self.key}: location {self.location} must be >= 0")
        if any(d < 0 for d in self.demand):
            raise InvalidValue(f"job {self.key}: demand {self.demand} must be >= 0")
        if self.service_s < 0 or self.release_s < 0:
            raise InvalidValue(f"job {self.key}: service_s and release_s must be >= 0")


@dataclass(frozen=True, slots=True)
class Site:
    key: str
    location: int
    kind: SiteKind
    service_s: int = 0  # unloading time at a dump
    window: TimeWindow | None = None  # opening hours
    geofence_id: int | None = None

    @property
    def unloads(self) -> bool:
        return self.kind is not SiteKind.DEPOT


@dataclass(frozen=True, slots=True)
class Break:
    window: TimeWindow  # when the break may start
    duration_s: int

    def __post_init__(self) -> None:
        if self.duration_s <= 0:
            raise InvalidValue(f"break: duration_s {self.duration_s} must be > 0")


@dataclass(frozen=True, slots=True)
class Vehicle:
    key: str  # plate or fleet number
    capacity: tuple[int, ...]
    start_site: int  # index into Problem.sites
    end_site: int
    shift: TimeWindow
    max_duration_s: int | None = None
    dumps: tuple[int, ...] = ()  # indexes into Problem.sites where it may unload mid-route
    max_trips: int | None = None
    break_: Break | None = None
    fixed_cost: int = 0
    vehicle_id: int | None = None
    # carried at the start (a re-plan mid-route); empty: nothing
    initial_load: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if any(c <= 0 for c in self.capacity):
            raise InvalidValue(f"vehicle {self.key}: capacity {self.capacity} must be > 0")
        if self.max_duration_s is not None and self.max_duration_s <= 0:
            raise InvalidValue(f"vehicle {self.key}: max_duration_s must be > 0")
        if self.max_trips is not None and self.max_trips < 1:
            raise InvalidValue(f"vehicle {self.key}: max_trips must be >= 1")
        if self.initial_load and len(self.initial_load) != len(self.capacity):
            raise InvalidValue(f"vehicle {self.key}: initial_load needs one figure per capacity")


@dataclass(frozen=True, slots=True)
class TravelMatrix:
    """Square integer matrices over the problem's locations."""

    durations_s: npt.NDArray[np.int64]
    distances_m: npt.NDArray[np.int64]

    def __post_init__(self) -> None:
        n = self.durations_s.shape[0]
        for name, m in (("durations_s", self.durations_s), ("distances_m", self.distances_m)):
            if m.ndim != 2 or m.shape != (n, n):
                raise InvalidValue(f"matrix.{name}: shape {m.shape}, expected ({n}, {n})")
            if m.dtype != np.int64:
                raise InvalidValue(f"matrix.{name}: dtype {m.dtype}, expected int64")
            if (m < 0).any():
                raise InvalidValue(f"matrix.{name}: has negative entries")

    @property
    def size(self) -> int:
        return int(self.durations_s.shape[0])


@dataclass(frozen=True, slots=True)
class Objective:
    """What a plan costs: distance, driving and working time, and each vehicle used."""

    per_m: int = 1
    per_s: int = 0
    per_vehicle: int = 0  # added to each vehicle's own fixed_cost when it is used


@dataclass(frozen=True, slots=True)
class Problem:
    name: str
    dimensions: tuple[str, ...]  # "kg", "l" ...
    jobs: tuple[Job, ...]
    sites: tuple[Site, ...]
    vehicles: tuple[Vehicle, ...]
    matrix: TravelMatrix
    objective: Objective = field(default_factory=Objective)
    # [lat, lon] of each matrix row when known (for drawing and paths); empty for benchmarks
    coordinates: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        n = self.matrix.size
        dims = len(self.dimensions)
        if not self.vehicles:
            raise InvalidValue("vehicles: at least one vehicle is needed")
        for job in self.jobs:
            if job.location >= n:
                raise InvalidValue(f"job {job.key}: location {job.location} outside the matrix")
            if len(job.demand) != dims:
                raise InvalidValue(f"job {job.key}: demand has {len(job.demand)} figures, {dims}")
        for site in self.sites:
            if not 0 <= site.location < n:
                raise InvalidValue(f"site {site.key}: location {site.location} out of range")
        for vehicle in self.vehicles:
            if len(vehicle.capacity) != dims:
                raise InvalidValue(f"vehicle {vehicle.key}: capacity needs {dims} figures")
            for index in (vehicle.start_site, vehicle.end_site, *vehicle.dumps):
                if not 0 <= index < len(self.sites):
                    raise InvalidValue(f"vehicle {vehicle.key}: site {index} does not exist")
            for index in vehicle.dumps:
                if not self.sites[index].unloads:
                    raise InvalidValue(f"vehicle {vehicle.key}: site {index} cannot unload")
        keys = [job.key for job in self.jobs]
        if len(set(keys)) != len(keys):
            raise InvalidValue("jobs: keys must be unique")
        if self.coordinates and len(self.coordinates) != n:
            raise InvalidValue(f"coordinates: {len(self.coordinates)} for {n} locations")


class VisitKind(enum.StrEnum):
    JOB = "job"
    DUMP = "dump"
    BREAK = "break"


@dataclass(frozen=True, slots=True)
class Visit:
    """One step of a route as the engine planned it. ``index`` is a job index for jobs and a
    site index for dumps (-1 for a break); times are the engine's claim, which the
    feasibility checker recomputes rather than trusts."""

    kind: VisitKind
    index: int
    arrival_s: int
    start_s: int  # service starts (after waiting for the window)
    departure_s: int


@dataclass(frozen=True, slots=True)
class Route:
    vehicle: int  # index into Problem.vehicles
    start_s: int
    visits: tuple[Visit, ...]
    end_s: int
    distance_m: int
    duration_s: int


class UnservedReason(enum.StrEnum):
    DEMAND_ABOVE_CAPACITY = "demand_above_capacity"
    WINDOW_UNREACHABLE = "window_unreachable"
    SHIFT_TOO_SHORT = "shift_too_short"
    NO_VEHICLE_LEFT = "no_vehicle_left"  # reachable alone, but the fleet ran out of room
    UNREACHABLE_BY_ROAD = "unreachable_by_road"  # no open road joins it to the depot


@dataclass(frozen=True, slots=True)
class Unserved:
    job: int
    reason: UnservedReason
    detail: str


@dataclass(frozen=True, slots=True)
class Solution:
    routes: tuple[Route, ...]  # only the vehicles used
    unserved: tuple[Unserved, ...]
    cost: int  # under Problem.objective
    engine: str
    runtime_s: float


def route_distance(problem: Problem, route: Route) -> int:
    """Metres driven: start site, each visit's location, end site."""
    return _route_sum(problem, route, problem.matrix.distances_m)


def _route_sum(problem: Problem, route: Route, matrix: npt.NDArray[np.int64]) -> int:
    vehicle = problem.vehicles[route.vehicle]
    here = problem.sites[vehicle.start_site].location
    total = 0
    for visit in route.visits:
        if visit.kind is VisitKind.BREAK:
            continue
        there = location_of(problem, visit)
        total += int(matrix[here, there])
        here = there
    return total + int(matrix[here, problem.sites[vehicle.end_site].location])


def location_of(problem: Problem, visit: Visit) -> int:
    if visit.kind is VisitKind.JOB:
        return problem.jobs[visit.index].location
    if visit.kind is VisitKind.DUMP:
        return problem.sites[visit.index].location
    raise InvalidValue("a break has no location")


def solution_cost(problem: Problem, routes: Sequence[Route]) -> int:
    """The objective of ``routes`` from the matrix (not the engine's own figure)."""
    objective = problem.objective
    total = 0
    for route in routes:
        vehicle = problem.vehicles[route.vehicle]
        total += objective.per_m * route_distance(problem, route)
        total += objective.per_s * (route.end_s - route.start_s)
        total += objective.per_vehicle + vehicle.fixed_cost
    return total
