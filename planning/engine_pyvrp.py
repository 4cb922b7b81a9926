"""The PyVRP engine: the planning problem as PyVRP data, PyVRP's best plan back as routes.

PyVRP only orders the stops; ``planning.schedule.timed_route`` times them. How the rules in
``planning.problem`` map onto PyVRP 0.14:

- Every matrix row is a PyVRP location and the matrices go in as they are.
- A job is a client: its demand is a pickup, its window bounds the service start, its
  ``release_s`` is the client's release time.
- A site becomes one PyVRP depot per service time it is used with. PyVRP applies a depot's
  service duration at the start of every trip, so also when a route leaves its start depot,
  and never at the end depot; ``problem.py`` has no service at the start or end site. So
  where a vehicle starts or ends the site is a depot without service, and where it unloads
  mid-route it is a reload depot with the site's ``service_s``.
- Releases at dumps are stricter in PyVRP: it lets the dump's unloading *start* no earlier
  than the next trip's release, where ``problem.py`` only asks the truck to *leave* the dump
  no earlier. Plans stay feasible; PyVRP may pass over a plan that fits by less than one
  unloading time.
- Trips: PyVRP counts a route's trips as reloads + 1 and does not count the unload at the
  end, so ``max_reloads = max_trips - 1``.
- A garage end (``SiteKind.DEPOT``) for a vehicle with dumps: the truck must empty after
  its last job, so the PyVRP route ends at the vehicle's dump nearest the garage, its shift
  (and maximum duration) cut by that dump's unloading and the drive on to the garage, whose
  cost is added to the vehicle's fixed cost; the returned route gets the dump visit back.
  A garage end for a vehicle without dumps simply ends there, and since nothing may ride
  back into a garage such a vehicle gets no capacity: it serves only jobs without demand.
- ``Vehicle.initial_load`` is PyVRP's initial load: aboard from the start, emptied at the
  first dump, as in ``problem.py``.
- Breaks: PyVRP has none. A vehicle's shift end and maximum duration are cut by its break's
  length, and ``timed_route`` puts the break in. A break taken early can still push a later
  stop past its window; ``planning.feasibility`` would report that.
- Durations: PyVRP starts a route as late as its windows allow, so waits anywhere shorten
  it; ``timed_route`` only absorbs the wait at the first stop. With waits further on, a
  route PyVRP kept within ``max_duration_s`` can come out longer (the checker reports it).
- Site windows bound the dump's service start and also the start and end sites' times
  (PyVRP's depot windows), which ``problem.py`` leaves open: stricter, never looser.
- ``SolveOptions.allow_unserved``: jobs become optional with a prize larger than what serving
  one can add, so PyVRP leaves out only what the fleet cannot take; PyVRP's penalties for
  infeasible plans are then scaled to that prize (see ``_penalties``).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pyvrp
from pyvrp import (
    IteratedLocalSearchCallbacks,
    IteratedLocalSearchParams,
    PenaltyParams,
    SolveParams,
)
from pyvrp.constants import MAX_VALUE
from pyvrp.exceptions import PenaltyBoundWarning

from planning.engine import Progress, SolveOptions
from planning.errors import InvalidValue, NoFeasiblePlan
from planning.problem import (
    DAY_S,
    Problem,
    Route,
    Site,
    Solution,
    TimeWindow,
    Unserved,
    UnservedReason,
    Vehicle,
    VisitKind,
    solution_cost,
)
from planning.schedule import Step, timed_route

PROGRESS_EVERY_S = 1.0
# With allow_unserved, the share of the time limit spent first with every job required.
REQUIRED_SHARE = 0.75
REQUIRED_FIRST_MIN_JOBS = 200


class PyVrpEngine:
    name = "pyvrp"

    def solve(self, problem: Problem, options: SolveOptions) -> Solution:
        started_s = time.perf_counter()
        jobs = [index for index in range(len(problem.jobs)) if index not in options.skip_jobs]
        if not options.allow_unserved or len(jobs) < REQUIRED_FIRST_MIN_JOBS:
            return self._solve(problem, jobs, options, started_s, options.time_limit_s)
        # On a large day, optional jobs with prizes leave out stops a truck had room for at
        # short limits (30 of 2,400 in 18 s; none with every job required): try every job
        # required first, and fall back to prizes only when the fleet cannot take them all.
        # (Small problems go straight to prizes: PyVRP can miss the unloading trip a small
        # required problem needs, which the prize search finds.)
        try:
            return self._solve(
                problem,
                jobs,
                replace(options, allow_unserved=False),
                started_s,
                options.time_limit_s * REQUIRED_SHARE,
            )
        except NoFeasiblePlan:
            return self._solve(problem, jobs, options, started_s, options.time_limit_s)

    def _solve(
        self,
        problem: Problem,
        jobs: list[int],
        options: SolveOptions,
        started_s: float,
        until_s: float,
    ) -> Solution:
        """Solve until ``until_s`` after ``started_s``."""
        model = _build_model(problem, jobs, options.allow_unserved) if jobs else None
        if model is None:
            return _nothing_planned(problem, jobs, options, started_s)
        watch = _Watch(started_s, until_s, options.progress)
        params = SolveParams(
            ils=IteratedLocalSearchParams(callbacks=watch),
            penalty=_penalties(model.prize) if options.allow_unserved else PenaltyParams(),
        )
        with warnings.catch_warnings():
            # PyVRP warns when it struggles to find a feasible plan; that outcome is
            # reported below as NoFeasiblePlan or as unserved jobs.
            warnings.simplefilter("ignore", PenaltyBoundWarning)
            result = pyvrp.solve(
                model.data, stop=watch, seed=options.seed, collect_stats=False, params=params
            )
        best = result.best
        if not best.is_feasible():
            raise NoFeasiblePlan(_infeasible_detail(problem, best, until_s))
        routes = _routes(problem, model, best)
        served = {
            visit.index for route in routes for visit in route.visits if visit.kind is VisitKind.JOB
        }
        unserved = _left_out(job for job in jobs if job not in served)
        cost = solution_cost(problem, routes)
        runtime_s = time.perf_counter() - started_s
        if options.progress is not None:
            options.progress(runtime_s, cost)
        return Solution(routes, unserved, cost, self.name, runtime_s)


# ---------------------------------------------------------------- the PyVRP model


@dataclass(frozen=True, slots=True)
class _VehicleSpec:
    """Everything PyVRP sees of a vehicle (plus its break, so that the vehicles of one
    vehicle type are also timed alike); vehicles with equal specs share a vehicle type."""

    capacity: tuple[int, ...]
    initial_load: tuple[int, ...]
    start_site: int
    end_site: int  # where the PyVRP route ends: a dump for a garage-ending vehicle with dumps
    final_dump: int | None  # that dump, visited before the garage in the returned route
    reload_sites: tuple[int, ...]
    max_reloads: int
    earliest_start_s: int
    latest_end_s: int
    max_duration_s: int
    fixed_cost: int
    break_duration_s: int
    break_window: TimeWindow | None


@dataclass(frozen=True, slots=True)
class _VehicleGroup:
    spec: _VehicleSpec
    vehicles: tuple[int, ...]  # indexes into Problem.vehicles, all alike for PyVRP


@dataclass(frozen=True, slots=True)
class _Model:
    data: pyvrp.ProblemData
    job_of_client: tuple[int, ...]
    site_of_depot: tuple[int, ...]
    groups: tuple[_VehicleGroup, ...]  # in PyVRP vehicle type order
    prize: int  # for leaving a job out; 0 when every job is required


@dataclass(slots=True)
class _Depots:
    """PyVRP depots, one per (site, service time) used; see the module docstring."""

    problem: Problem
    horizon_s: int
    depots: list[pyvrp.Depot] = field(default_factory=list)
    sites: list[int] = field(default_factory=list)
    index: dict[tuple[int, int], int] = field(default_factory=dict)

    def terminal(self, site: int) -> int:
        """A start or end: no service (PyVRP would apply it when the route leaves)."""
        return self._depot(site, 0)

    def reload(self, site: int) -> int:
        return self._depot(site, self.problem.sites[site].service_s)

    def _depot(self, site_index: int, service_s: int) -> int:
        key = (site_index, service_s)
        if key not in self.index:
            site = self.problem.sites[site_index]
            window = _site_window(site, self.horizon_s)
            self.index[key] = len(self.depots)
            self.depots.append(
                pyvrp.Depot(
                    location=site.location,
                    tw_early=window.start_s,
                    tw_late=window.end_s,
                    service_duration=service_s,
                    name=site.key,
                )
            )
            self.sites.append(site_index)
        return self.index[key]


def _build_model(problem: Problem, jobs: Sequence[int], allow_unserved: bool) -> _Model | None:
    """PyVRP's data for ``jobs``; None when no vehicle has time to work."""
    horizon_s = _horizon_s(problem)
    groups = _vehicle_groups(problem, len(jobs), horizon_s)
    if not groups:
        return None
    depots = _Depots(problem, horizon_s)
    vehicle_types = [_vehicle_type(problem, group, depots) for group in groups]
    prize = _prize(problem, groups, horizon_s) if allow_unserved else 0
    clients = [_client(problem, job, horizon_s, prize, allow_unserved) for job in jobs]
    coordinates = problem.coordinates or ((0.0, 0.0),) * problem.matrix.size
    locations = [pyvrp.Location(x=lon, y=lat) for lat, lon in coordinates]
    # PyVRP's stub writes matrices as ``np.ndarray[int]``, a shape type no array has.
    distances: Any = problem.matrix.distances_m
    durations: Any = problem.matrix.durations_s
    try:
        data = pyvrp.ProblemData(
            locations=locations,
            clients=clients,
            depots=depots.depots,
            vehicle_types=vehicle_types,
            distance_matrices=[distances],
            duration_matrices=[durations],
        )
    except (ValueError, IndexError) as error:
        raise InvalidValue(f"problem {problem.name}: PyVRP rejects it: {error}") from error
    return _Model(data, tuple(jobs), tuple(depots.sites), tuple(groups), prize)


def _client(
    problem: Problem, job_index: int, horizon_s: int, prize: int, allow_unserved: bool
) -> pyvrp.Client:
    job = problem.jobs[job_index]
    window = job.window or TimeWindow(0, horizon_s)
    try:
        return pyvrp.Client(
            location=job.location,
            delivery=[0] * len(job.demand),
            pickup=list(job.demand),
            service_duration=job.service_s,
            tw_early=window.start_s,
            tw_late=window.end_s,
            release_time=job.release_s,
            prize=prize,
            required=not allow_unserved,
            name=job.key,
        )
    except ValueError as error:
        raise InvalidValue(f"job {job.key}: PyVRP rejects it: {error}") from error


def _vehicle_type(problem: Problem, group: _VehicleGroup, depots: _Depots) -> pyvrp.VehicleType:
    spec = group.spec
    objective = problem.objective
    return pyvrp.VehicleType(
        num_available=len(group.vehicles),
        capacity=list(spec.capacity),
        initial_load=list(spec.initial_load),
        start_depot=depots.terminal(spec.start_site),
        end_depot=depots.terminal(spec.end_site),
        fixed_cost=spec.fixed_cost,
        tw_early=spec.earliest_start_s,
        tw_late=spec.latest_end_s,
        shift_duration=spec.max_duration_s,
        unit_distance_cost=objective.per_m,
        unit_duration_cost=objective.per_s,
        reload_depots=[depots.reload(site) for site in spec.reload_sites],
        max_reloads=spec.max_reloads,
        name=",".join(problem.vehicles[index].key for index in group.vehicles),
    )


def _vehicle_groups(problem: Problem, job_count: int, horizon_s: int) -> list[_VehicleGroup]:
    """Vehicles grouped by spec, in first-seen order; vehicles that cannot work are left out."""
    members: dict[_VehicleSpec, list[int]] = {}
    for index, vehicle in enumerate(problem.vehicles):
        spec = _vehicle_spec(problem, vehicle, job_count)
        if spec is not None and _can_work(problem, spec, horizon_s):
            members.setdefault(spec, []).append(index)
    return [_VehicleGroup(spec, tuple(vehicles)) for spec, vehicles in members.items()]


def _vehicle_spec(problem: Problem, vehicle: Vehicle, job_count: int) -> _VehicleSpec | None:
    end_site, final_dump = vehicle.end_site, None
    tail_s = tail_m = 0  # unloading at the final dump and the drive on to the garage
    capacity = vehicle.capacity
    if not problem.sites[vehicle.end_site].unloads and not vehicle.dumps:
        capacity = (0,) * len(capacity)  # nothing may ride back into the garage
    elif not problem.sites[vehicle.end_site].unloads:
        final_dump = _dump_nearest(problem, vehicle.dumps, vehicle.end_site)
        end_site = final_dump
        dump = problem.sites[final_dump].location
        garage = problem.sites[vehicle.end_site].location
        tail_s = problem.sites[final_dump].service_s + int(problem.matrix.durations_s[dump, garage])
        tail_m = int(problem.matrix.distances_m[dump, garage])
    break_s = vehicle.break_.duration_s if vehicle.break_ is not None else 0
    shift_s = vehicle.shift.end_s - vehicle.shift.start_s
    if vehicle.max_duration_s is not None:
        shift_s = min(shift_s, vehicle.max_duration_s)
    max_duration_s = shift_s - tail_s - break_s
    initial_load = vehicle.initial_load or (0,) * len(capacity)
    overloaded = any(aboard > room for aboard, room in zip(initial_load, capacity, strict=True))
    if max_duration_s <= 0 or overloaded:
        return None  # no time to work, or too full to take anything (PyVRP rejects it)
    objective = problem.objective
    # Without a limit a trip per job is the most that can help; PyVRP's own "no limit" is
    # uint64's largest value, kept out of our sums.
    max_trips = vehicle.max_trips if vehicle.max_trips is not None else job_count + 1
    return _VehicleSpec(
        capacity=capacity,
        initial_load=initial_load,
        start_site=vehicle.start_site,
        end_site=end_site,
        final_dump=final_dump,
        reload_sites=vehicle.dumps,
        max_reloads=max_trips - 1,
        earliest_start_s=vehicle.shift.start_s,
        latest_end_s=vehicle.shift.end_s - tail_s - break_s,
        max_duration_s=max_duration_s,
        fixed_cost=(
            vehicle.fixed_cost
            + objective.per_vehicle
            + objective.per_m * tail_m
            + objective.per_s * tail_s
        ),
        break_duration_s=break_s,
        break_window=vehicle.break_.window if vehicle.break_ is not None else None,
    )


def _dump_nearest(problem: Problem, dumps: Sequence[int], garage_site: int) -> int:
    garage = problem.sites[garage_site].location

    def drive_to_garage(site: int) -> tuple[int, int, int]:
        here = problem.sites[site].location
        durations, distances = problem.matrix.durations_s, problem.matrix.distances_m
        return int(durations[here, garage]), int(distances[here, garage]), site

    return min(dumps, key=drive_to_garage)


def _can_work(problem: Problem, spec: _VehicleSpec, horizon_s: int) -> bool:
    """Whether the shift left after the cuts overlaps its start and end sites' hours; PyVRP
    rejects vehicle types that do not."""
    shift = (spec.earliest_start_s, spec.latest_end_s)
    start = _site_window(problem.sites[spec.start_site], horizon_s)
    end = _site_window(problem.sites[spec.end_site], horizon_s)
    return all(max(shift[0], hours.start_s) <= min(shift[1], hours.end_s) for hours in (start, end))


def _site_window(site: Site, horizon_s: int) -> TimeWindow:
    return site.window or TimeWindow(0, horizon_s)


def _horizon_s(problem: Problem) -> int:
    """A finite stand-in for "no limit": later than every time in the problem, and far from
    the end of int64, which PyVRP's own default (int64's largest value) is not when summed."""
    times = [DAY_S]
    times += [vehicle.shift.end_s for vehicle in problem.vehicles]
    times += [job.release_s for job in problem.jobs]
    times += [job.window.end_s for job in problem.jobs if job.window is not None]
    times += [site.window.end_s for site in problem.sites if site.window is not None]
    return max(times)


def _prize(problem: Problem, groups: Sequence[_VehicleGroup], horizon_s: int) -> int:
    """What leaving a job out forgoes: more than serving it can add (a detour to it and to a
    dump, a whole day's time, a vehicle of its own), so PyVRP leaves a job out only when no
    vehicle can take it. Capped at PyVRP's largest safe value so the sum stays in int64."""
    objective = problem.objective
    longest_m = int(problem.matrix.distances_m.max(initial=0))
    vehicle_cost = max((group.spec.fixed_cost for group in groups), default=0)
    prize = 4 * objective.per_m * longest_m + objective.per_s * horizon_s + vehicle_cost + 1
    return min(prize, MAX_VALUE)


# ---------------------------------------------------------------- the search


def _penalties(prize: int) -> PenaltyParams:
    """Penalties for plans with optional jobs: capped at the prize, so that at the cap a unit
    of excess load or time warp costs as much as leaving a job out (and dropping the job also
    saves its detour: feasibility wins). PyVRP's default cap (100 000 per unit) lets carrying
    one job too many cost less than its prize, and the search never returns to a feasible plan.
    PyVRP starts halfway up, and adjusts every 500 candidates by default; on long routes it
    makes only ~150 a second, too few for our limits, so it adjusts every 50."""
    return PenaltyParams(max_penalty=float(prize), solutions_between_updates=50)


class _Watch(IteratedLocalSearchCallbacks):
    """PyVRP's stopping criterion and search callbacks in one: stops at the wall-clock limit
    counted from the start of ``solve`` (model building included; PyVRP checks it once per
    iteration) and reports progress about once a second with the cost of the best feasible
    plan so far. With optional jobs that cost can rise: a plan serving more jobs is better."""

    def __init__(self, started_s: float, time_limit_s: float, progress: Progress | None) -> None:
        self._started_s = started_s
        self._time_limit_s = time_limit_s
        self._progress = progress
        self._next_report_s = started_s
        self._best_cost: int | None = None

    def __call__(self, best_cost: int) -> bool:
        now_s = time.perf_counter()
        elapsed_s = now_s - self._started_s
        if self._progress is not None and now_s >= self._next_report_s:
            self._progress(elapsed_s, self._best_cost)
            self._next_report_s = now_s + PROGRESS_EVERY_S
        return elapsed_s >= self._time_limit_s

    def on_start(self, ils: pyvrp.IteratedLocalSearch) -> None:
        self._note(ils.initial_solution)

    def on_best(self, best: pyvrp.Solution) -> None:
        self._note(best)

    def _note(self, solution: pyvrp.Solution) -> None:
        # The plan's own cost, without the prizes of jobs left out.
        if solution.is_feasible():
            self._best_cost = (
                solution.distance_cost() + solution.duration_cost() + solution.fixed_vehicle_cost()
            )


# ---------------------------------------------------------------- back to routes


def _routes(problem: Problem, model: _Model, best: pyvrp.Solution) -> tuple[Route, ...]:
    unused = [list(group.vehicles) for group in model.groups]
    routes = []
    for pyvrp_route in best.routes():
        group = model.groups[pyvrp_route.vehicle_type()]
        vehicle_index = unused[pyvrp_route.vehicle_type()].pop(0)
        steps = _steps(model, pyvrp_route)
        if group.spec.final_dump is not None:
            steps.append((VisitKind.DUMP, group.spec.final_dump))
        routes.append(timed_route(problem, vehicle_index, steps))
    return tuple(sorted(routes, key=lambda route: route.vehicle))


def _steps(model: _Model, pyvrp_route: pyvrp.Route) -> list[Step]:
    steps: list[Step] = []
    activities = list(pyvrp_route)
    for activity in activities[1:-1]:  # the first and last are the start and end depots
        if activity.is_client():
            steps.append((VisitKind.JOB, model.job_of_client[activity.idx]))
        else:
            steps.append((VisitKind.DUMP, model.site_of_depot[activity.idx]))
    return steps


def _left_out(jobs: Iterable[int]) -> tuple[Unserved, ...]:
    detail = "left out by the solver: no vehicle had room or time left for it"
    return tuple(Unserved(job, UnservedReason.NO_VEHICLE_LEFT, detail) for job in jobs)


def _nothing_planned(
    problem: Problem, jobs: Sequence[int], options: SolveOptions, started_s: float
) -> Solution:
    """No job to plan, or no vehicle whose shift leaves any time to work."""
    if jobs and not options.allow_unserved:
        raise NoFeasiblePlan(
            f"problem {problem.name}: no vehicle has time to work once its shift is cut by "
            f"its break and the final unloading, and {len(jobs)} jobs may not be left out"
        )
    runtime_s = time.perf_counter() - started_s
    return Solution((), _left_out(jobs), 0, PyVrpEngine.name, runtime_s)


def _infeasible_detail(problem: Problem, best: pyvrp.Solution, time_limit_s: float) -> str:
    return (
        f"problem {problem.name}: PyVRP found no feasible plan in {time_limit_s} s "
        f"(best: {best.num_missing_clients()} required jobs unplaced, "
        f"excess load {best.excess_load()}, time warp {best.time_warp()} s); "
        "a larger fleet, longer shifts or allow_unserved would help"
    )
