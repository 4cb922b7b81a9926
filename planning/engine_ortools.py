"""The OR-Tools engine: the problem as a routing model, searched by guided local search.

OR-Tools decides which vehicle serves which job in what order, with dump visits between;
``planning.schedule`` then times each route, as it does for every engine.

How the rules of ``planning.problem`` become a routing model:

- Nodes are the jobs, the vehicles' start and end sites, and copies of each dump site: a
  routing node is visited at most once, a dump many times, so each copy is an optional node.
- Loads: one dimension per capacity dimension. A job adds its demand. A dump subtracts the
  largest capacity and its slack (0 to that capacity) lets the load land anywhere from 0 to
  what was aboard: the reload trick of OR-Tools' cvrp_reload example. Slack is fixed to 0
  everywhere else, so only a dump can change the load by other than a demand.
- The last dump of a truck bound for a garage is folded into its last arc: its end node is
  "the garage through the cheapest of its dumps open all day", so the arc from a job to it
  is job -> dump -> garage, and reading the route out adds that dump visit. (Insertion
  heuristics add one node at a time and so could never add the first job and the dump it
  needs together.) A garage-bound truck whose dumps all keep hours must instead arrive with
  load 0, which forces a dump copy after its last job.
- Trips: a dimension counting dump copies visited, capped so that trips (dump visits, plus
  one when the route ends where it unloads) stay within ``max_trips``.
- Time: travel plus the service of the node left; a node's cumul is when its service starts,
  bounded by its window; the shift bounds the start and end, the end site's closing the end,
  ``max_duration_s`` the span; a break is an OR-Tools break interval.
- OR-Tools only orders the stops; ``planning.schedule`` times them by its own rules (the break
  at the first gap after its window opens, waiting where the truck arrives early), which can
  be late where OR-Tools' timing was not. Such routes lose the late jobs, reported unserved.
- Release dates are not modelled: OR-Tools cannot make a trip leave after its jobs' releases,
  so a problem that needs them raises ``Unsupported``.
- The routing search takes no random seed, so ``SolveOptions.seed`` is ignored; the search is
  deterministic but for where the time limit cuts it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from planning.engine import Progress, SolveOptions
from planning.errors import NoFeasiblePlan, Unsupported
from planning.problem import (
    Problem,
    Route,
    Solution,
    TimeWindow,
    Unserved,
    UnservedReason,
    Vehicle,
    VisitKind,
    solution_cost,
)
from planning.schedule import Step, timed_route

Matrix = npt.NDArray[np.int64]

# Kept back from the time limit: OR-Tools checks it between moves and overran it by up to
# 0.15 s on 1,000 jobs with windows; reading the routes out and timing them takes ~20 ms.
_RESERVE_S = 0.1
_RESERVE_PER_JOB_S = 0.000_15
_PROGRESS_EVERY_S = 1.0
_STATUS_NAMES = {n: name for name, n in routing_enums_pb2.RoutingSearchStatus.Value.items()}


class OrToolsEngine:
    name = "ortools"

    def solve(self, problem: Problem, options: SolveOptions) -> Solution:
        started = time.monotonic()
        allow_unserved = options.allow_unserved
        routed = [j for j in range(len(problem.jobs)) if j not in options.skip_jobs]
        _refuse_release_dates(problem, routed)
        routed, unserved = _outside_every_shift(problem, routed, allow_unserved)
        if not routed:
            return Solution((), tuple(unserved), 0, self.name, time.monotonic() - started)
        model = _build(problem, routed, allow_unserved)
        parameters = _search_parameters()
        report = _ProgressReport(problem, model, options.progress, started)
        if options.progress is not None:
            model.routing.AddAtSolutionCallback(report)
        # Closing the model wants a time limit already; the real one is set once it is closed.
        parameters.time_limit.FromMilliseconds(max(10, int(options.time_limit_s * 1000)))
        model.routing.CloseModelWithParameters(parameters)
        reserve_s = _RESERVE_S + _RESERVE_PER_JOB_S * len(routed)
        left_s = options.time_limit_s - (time.monotonic() - started) - reserve_s
        parameters.time_limit.FromMilliseconds(max(10, int(left_s * 1000)))
        assignment = model.routing.SolveWithParameters(parameters)
        if assignment is None:
            status = _STATUS_NAMES.get(model.routing.status(), "unknown")
            raise NoFeasiblePlan(
                f"OR-Tools found no plan for {len(routed)} jobs in {options.time_limit_s} s"
                f" ({status})"
            )
        steps = _steps_by_vehicle(model, lambda var: int(assignment.Value(var)))
        unserved.extend(_left_out(routed, steps))
        late = _late_jobs(problem, steps)
        if late and not allow_unserved:
            raise NoFeasiblePlan(f"job {problem.jobs[late[0].job].key}: {late[0].detail}")
        unserved.extend(late)
        routes = _routes(problem, steps)
        cost = solution_cost(problem, routes)
        report.final(cost)
        return Solution(routes, tuple(unserved), cost, self.name, time.monotonic() - started)


@dataclass(frozen=True, slots=True)
class _Nodes:
    """The routing model's nodes: jobs, then start and end sites, then dump copies."""

    locations: list[int]
    service_s: list[int]
    windows: list[TimeWindow | None]
    steps: list[Step | None]  # what visiting the node means on a route; None at start and end
    starts: list[int]  # each vehicle's start node
    ends: list[int]  # each vehicle's end node
    via_dumps: dict[int, tuple[int, ...]]  # end node reached through a dump -> the dumps
    dump_copies: list[tuple[int, int]]  # (node, dump site index)


@dataclass(frozen=True, slots=True)
class _Model:
    routing: Any  # pywrapcp.RoutingModel
    manager: Any  # pywrapcp.RoutingIndexManager
    nodes: _Nodes
    # end node reached through a dump -> the dump taken from each node (-1: none needed)
    last_dump: dict[int, Matrix]


def _refuse_release_dates(problem: Problem, routed: Sequence[int]) -> None:
    earliest_shift_s = min(vehicle.shift.start_s for vehicle in problem.vehicles)
    for j in routed:
        job = problem.jobs[j]
        if job.release_s > earliest_shift_s:
            raise Unsupported(
                f"job {job.key}: release_s {job.release_s} is after a shift starts"
                f" ({earliest_shift_s} s); OR-Tools cannot hold a trip back for releases"
            )


def _outside_every_shift(
    problem: Problem, routed: Sequence[int], allow_unserved: bool
) -> tuple[list[int], list[Unserved]]:
    """Jobs whose window misses every shift, which would leave OR-Tools an empty domain
    (``planning.diagnosis`` normally puts them in ``skip_jobs`` first)."""
    first_s = min(vehicle.shift.start_s for vehicle in problem.vehicles)
    last_s = max(vehicle.shift.end_s for vehicle in problem.vehicles)
    kept: list[int] = []
    unserved: list[Unserved] = []
    for j in routed:
        window = problem.jobs[j].window
        if window is None or (window.end_s >= first_s and window.start_s <= last_s):
            kept.append(j)
            continue
        detail = f"window [{window.start_s}, {window.end_s}] s misses every shift"
        if not allow_unserved:
            raise NoFeasiblePlan(f"job {problem.jobs[j].key}: {detail}")
        unserved.append(Unserved(j, UnservedReason.WINDOW_UNREACHABLE, detail))
    return kept, unserved


# ---------------------------------------------------------------- vehicles' trips


def _ends_unloading(problem: Problem, vehicle: Vehicle) -> bool:
    return problem.sites[vehicle.end_site].unloads


def _closes_s(problem: Problem, vehicle: Vehicle) -> int:
    """When the route must have ended: the shift's end, or the end site's closing if earlier."""
    window = problem.sites[vehicle.end_site].window
    return vehicle.shift.end_s if window is None else min(vehicle.shift.end_s, window.end_s)


def _dumps_on_the_way_back(problem: Problem, vehicle: Vehicle) -> tuple[int, ...]:
    """Dumps a garage-bound truck may empty at on its last arc: those open all day (the last
    arc cannot keep a dump's hours)."""
    if _ends_unloading(problem, vehicle):
        return ()
    return tuple(s for s in vehicle.dumps if problem.sites[s].window is None)


def _dump_visits_allowed(problem: Problem, vehicle: Vehicle) -> int | None:
    """Dump copies a vehicle may visit within ``max_trips``; None when trips are unlimited."""
    if vehicle.max_trips is None:
        return None
    # The end closes the last trip when the truck unloads there or on its last arc;
    # otherwise a dump copy closes it.
    closes_itself = _ends_unloading(problem, vehicle) or _dumps_on_the_way_back(problem, vehicle)
    return vehicle.max_trips - (1 if closes_itself else 0)


def _dump_copy_counts(problem: Problem, routed: Sequence[int]) -> dict[int, int]:
    """Visits each dump site may get: the trips the demand needs with a margin for imperfect
    packing, plus a last dump for each garage-bound truck that must visit one, never more than
    the vehicles may make."""
    counts: dict[int, int] = {}
    for s in sorted({s for vehicle in problem.vehicles for s in vehicle.dumps}):
        users = [vehicle for vehicle in problem.vehicles if s in vehicle.dumps]
        trips = _trips_needed(problem, routed, users)
        trips = min(trips + trips // 4 + 1, len(routed))
        must_end_empty = [
            vehicle
            for vehicle in users
            if not _ends_unloading(problem, vehicle)
            and not _dumps_on_the_way_back(problem, vehicle)
        ]
        needed = trips + len(must_end_empty)
        allowed = [_dump_visits_allowed(problem, vehicle) for vehicle in users]
        if all(a is not None for a in allowed):
            needed = min(needed, sum(a for a in allowed if a is not None))
        if needed > 0:
            counts[s] = needed
    return counts


def _trips_needed(problem: Problem, routed: Sequence[int], users: Sequence[Vehicle]) -> int:
    trips = 0
    for d in range(len(problem.dimensions)):
        total = sum(problem.jobs[j].demand[d] for j in routed)
        smallest = min(vehicle.capacity[d] for vehicle in users)
        trips = max(trips, math.ceil(total / smallest))
    return trips


# ---------------------------------------------------------------- the model


def _build(problem: Problem, routed: Sequence[int], allow_unserved: bool) -> _Model:
    nodes = _nodes(problem, routed)
    manager = pywrapcp.RoutingIndexManager(
        len(nodes.locations), len(problem.vehicles), nodes.starts, nodes.ends
    )
    transit_s, distance_m, last_dump = _arc_matrices(problem, nodes)
    model = _Model(pywrapcp.RoutingModel(manager), manager, nodes, last_dump)
    dearest_arc = _add_costs(model, problem, transit_s, distance_m)
    _add_dump_copies(model, problem)
    _add_loads(model, problem)
    _add_trip_limits(model, problem)
    _add_time(model, problem, transit_s)
    if allow_unserved:
        _make_jobs_optional(model, problem, dearest_arc)
    return model


def _nodes(problem: Problem, routed: Sequence[int]) -> _Nodes:
    locations: list[int] = []
    service_s: list[int] = []
    windows: list[TimeWindow | None] = []
    steps: list[Step | None] = []

    def add(location: int, service: int, window: TimeWindow | None, step: Step | None) -> int:
        locations.append(location)
        service_s.append(service)
        windows.append(window)
        steps.append(step)
        return len(locations) - 1

    for j in routed:
        job = problem.jobs[j]
        add(job.location, job.service_s, job.window, (VisitKind.JOB, j))
    # No service at a start or end: the route starts when it leaves and ends on arrival.
    site_nodes: dict[tuple[int, tuple[int, ...]], int] = {}
    starts: list[int] = []
    ends: list[int] = []
    for vehicle in problem.vehicles:
        for s, dumps, chosen in (
            (vehicle.start_site, (), starts),
            (vehicle.end_site, _dumps_on_the_way_back(problem, vehicle), ends),
        ):
            if (s, dumps) not in site_nodes:
                site_nodes[s, dumps] = add(problem.sites[s].location, 0, None, None)
            chosen.append(site_nodes[s, dumps])
    via_dumps = {node: dumps for (_, dumps), node in site_nodes.items() if dumps}
    dump_copies: list[tuple[int, int]] = []
    for s, count in _dump_copy_counts(problem, routed).items():
        site = problem.sites[s]
        for _ in range(count):
            node = add(site.location, site.service_s, site.window, (VisitKind.DUMP, s))
            dump_copies.append((node, s))
    return _Nodes(locations, service_s, windows, steps, starts, ends, via_dumps, dump_copies)


def _arc_matrices(problem: Problem, nodes: _Nodes) -> tuple[Matrix, Matrix, dict[int, Matrix]]:
    """Node to node: time (service at the node left plus the drive) and distance; into an end
    reached through a dump, from a job, by way of the cheapest of its dumps."""
    durations, distances = problem.matrix.durations_s, problem.matrix.distances_m
    locations = np.asarray(nodes.locations, dtype=np.int64)
    service_s = np.asarray(nodes.service_s, dtype=np.int64)
    transit_s = durations[np.ix_(locations, locations)] + service_s[:, None]
    distance_m = distances[np.ix_(locations, locations)]
    jobs = np.flatnonzero([step is not None and step[0] is VisitKind.JOB for step in nodes.steps])
    last_dump: dict[int, Matrix] = {}
    for end, dumps in nodes.via_dumps.items():
        garage = nodes.locations[end]
        dump_locations = np.asarray([problem.sites[s].location for s in dumps], dtype=np.int64)
        dump_service_s = np.asarray([problem.sites[s].service_s for s in dumps], dtype=np.int64)
        leg_s = (
            durations[np.ix_(locations[jobs], dump_locations)]
            + (dump_service_s + durations[dump_locations, garage])[None, :]
        )
        leg_m = (
            distances[np.ix_(locations[jobs], dump_locations)]
            + distances[dump_locations, garage][None, :]
        )
        objective = problem.objective
        score = objective.per_m * leg_m + objective.per_s * leg_s
        best = np.argmin(score if score.any() else leg_s, axis=1)  # a free plan: the nearest
        picked = np.arange(len(jobs))
        transit_s[jobs, end] = service_s[jobs] + leg_s[picked, best]
        distance_m[jobs, end] = leg_m[picked, best]
        chosen = np.full(len(locations), -1, dtype=np.int64)
        chosen[jobs] = np.asarray(dumps, dtype=np.int64)[best]
        last_dump[end] = chosen
    return transit_s, distance_m, last_dump


def _add_costs(model: _Model, problem: Problem, transit_s: Matrix, distance_m: Matrix) -> int:
    """Arc costs and vehicle fixed costs; returns the dearest arc. Waiting is not costed here:
    the solution's cost is recomputed from the timed routes."""
    objective = problem.objective
    arc_cost = objective.per_m * distance_m + objective.per_s * transit_s
    callback = model.routing.RegisterTransitMatrix(arc_cost.tolist())
    model.routing.SetArcCostEvaluatorOfAllVehicles(callback)
    for v, vehicle in enumerate(problem.vehicles):
        model.routing.SetFixedCostOfVehicle(vehicle.fixed_cost + objective.per_vehicle, v)
    return int(arc_cost.max())


def _add_dump_copies(model: _Model, problem: Problem) -> None:
    for node, s in model.nodes.dump_copies:
        index = model.manager.NodeToIndex(node)
        users = [v for v, vehicle in enumerate(problem.vehicles) if s in vehicle.dumps]
        if len(users) < len(problem.vehicles):
            # -1 is the vehicle of a node left out (SetAllowedVehiclesForIndex does not take a
            # Python list in this OR-Tools build).
            model.routing.VehicleVar(index).SetValues([-1, *users])
        model.routing.AddDisjunction([index], 0)  # optional, free to leave out


def _add_loads(model: _Model, problem: Problem) -> None:
    routing, nodes = model.routing, model.nodes
    dump_nodes = {node for node, _ in nodes.dump_copies}
    for d, unit in enumerate(problem.dimensions):
        unload = max(vehicle.capacity[d] for vehicle in problem.vehicles) if dump_nodes else 0
        transits = [
            0
            if step is None
            else -unload
            if step[0] is VisitKind.DUMP
            else problem.jobs[step[1]].demand[d]
            for step in nodes.steps
        ]
        callback = routing.RegisterUnaryTransitVector(transits)
        name = f"load {d} ({unit})"
        capacities = [vehicle.capacity[d] for vehicle in problem.vehicles]
        routing.AddDimensionWithVehicleCapacity(callback, unload, capacities, False, name)
        load = routing.GetDimensionOrDie(name)
        for v, vehicle in enumerate(problem.vehicles):
            # what the truck carries when it starts (a re-plan mid-route), else nothing
            aboard = vehicle.initial_load[d] if vehicle.initial_load else 0
            load.CumulVar(routing.Start(v)).SetValue(min(aboard, vehicle.capacity[d]))
        for index in range(routing.Size()):
            if model.manager.IndexToNode(index) not in dump_nodes:
                load.SlackVar(index).SetValue(0)
        for v, vehicle in enumerate(problem.vehicles):
            if nodes.ends[v] not in nodes.via_dumps and not _ends_unloading(problem, vehicle):
                load.CumulVar(routing.End(v)).SetMax(0)


def _add_trip_limits(model: _Model, problem: Problem) -> None:
    routing, nodes = model.routing, model.nodes
    allowed = [_dump_visits_allowed(problem, vehicle) for vehicle in problem.vehicles]
    if not nodes.dump_copies or all(a is None for a in allowed):
        return
    visits = [0 if step is None or step[0] is VisitKind.JOB else 1 for step in nodes.steps]
    callback = routing.RegisterUnaryTransitVector(visits)
    capacities = [len(nodes.dump_copies) if a is None else a for a in allowed]
    routing.AddDimensionWithVehicleCapacity(callback, 0, capacities, True, "dump visits")


def _add_time(model: _Model, problem: Problem, transit_s: Matrix) -> None:
    """The clock counts from the earliest shift start: a start cumul bounded away from 0
    makes OR-Tools' filters about 25 times slower (measured at 1,000 jobs)."""
    routing, manager, nodes = model.routing, model.manager, model.nodes
    origin_s = min(vehicle.shift.start_s for vehicle in problem.vehicles)
    horizon_s = max(vehicle.shift.end_s for vehicle in problem.vehicles) - origin_s
    callback = routing.RegisterTransitMatrix(transit_s.tolist())
    # Slack is waiting (for a window, or a break), allowed up to the whole day.
    routing.AddDimension(callback, horizon_s, horizon_s, False, "time")
    clock = routing.GetDimensionOrDie("time")
    for node, window in enumerate(nodes.windows):
        if window is not None:
            clock.CumulVar(manager.NodeToIndex(node)).SetRange(
                max(window.start_s - origin_s, 0), min(window.end_s - origin_s, horizon_s)
            )
    # A break may not overlap a visit's service (OR-Tools reads this per routing index).
    service_by_index = [nodes.service_s[manager.IndexToNode(i)] for i in range(routing.Size())]
    for v, vehicle in enumerate(problem.vehicles):
        if vehicle.shift.start_s > origin_s:
            clock.CumulVar(routing.Start(v)).SetMin(vehicle.shift.start_s - origin_s)
        clock.CumulVar(routing.End(v)).SetMax(_closes_s(problem, vehicle) - origin_s)
        if vehicle.max_duration_s is not None:
            clock.SetSpanUpperBoundForVehicle(vehicle.max_duration_s, v)
        if vehicle.break_ is not None:
            window = vehicle.break_.window
            interval = routing.solver().FixedDurationIntervalVar(
                max(window.start_s - origin_s, 0),
                max(window.end_s - origin_s, 0),
                vehicle.break_.duration_s,
                False,
                f"break {v}",
            )
            clock.SetBreakIntervalsOfVehicle([interval], v, service_by_index)


def _make_jobs_optional(model: _Model, problem: Problem, dearest_arc: int) -> None:
    """Each job may be left out at a price above anything serving it can add (detours, a dump
    trip, a vehicle's fixed cost), so the search leaves out only what does not fit."""
    dearest_vehicle = max(v.fixed_cost for v in problem.vehicles) + problem.objective.per_vehicle
    penalty = 10 * dearest_arc + dearest_vehicle + 1
    for node, step in enumerate(model.nodes.steps):
        if step is not None and step[0] is VisitKind.JOB:
            model.routing.AddDisjunction([model.manager.NodeToIndex(node)], penalty)


def _search_parameters() -> Any:
    parameters = pywrapcp.DefaultRoutingSearchParameters()
    # Measured on 2 shared cores. 60 jobs with 2 h windows, 2 trucks, garage and landfill,
    # 1 s: within 5 % of PATH_CHEAPEST_ARC and of PARALLEL_CHEAPEST_INSERTION (which won 2
    # seeds of 4 and lost 1). 1,000 jobs needing 42 landfill trips, 10 s: all served (first
    # plan in 0.5 s), where PATH_CHEAPEST_ARC left 386 out and parallel insertion needed
    # 1.5 s for its first plan and ended 9 % dearer.
    parameters.first_solution_strategy = (
        routing_enums_pb2.FirstSolutionStrategy.PATH_MOST_CONSTRAINED_ARC
    )
    parameters.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    )
    return parameters


# ---------------------------------------------------------------- reading plans out


def _steps_by_vehicle(model: _Model, value: Callable[[Any], int]) -> list[list[Step]]:
    """Each vehicle's visits in order; ``value`` reads a variable of the plan at hand."""
    routing, manager, nodes = model.routing, model.manager, model.nodes
    found: list[list[Step]] = []
    for v in range(routing.vehicles()):
        steps: list[Step] = []
        index = routing.Start(v)
        while not routing.IsEnd(next_index := value(routing.NextVar(index))):
            index = next_index
            step = nodes.steps[manager.IndexToNode(index)]
            # Two copies of a dump in a row cost nothing when it has no service time; the
            # second one empties an empty truck.
            if step is not None and not (step[0] is VisitKind.DUMP and steps[-1:] == [step]):
                steps.append(step)
        last_dump = model.last_dump.get(nodes.ends[v])
        if last_dump is not None and steps:
            dump = int(last_dump[manager.IndexToNode(index)])
            if dump >= 0:
                steps.append((VisitKind.DUMP, dump))
        found.append(steps)
    return found


def _routes(problem: Problem, steps_by_vehicle: Sequence[Sequence[Step]]) -> tuple[Route, ...]:
    """Timed routes of the vehicles that serve a job (a route of dumps alone only costs)."""
    return tuple(
        timed_route(problem, v, steps)
        for v, steps in enumerate(steps_by_vehicle)
        if any(kind is VisitKind.JOB for kind, _ in steps)
    )


def _left_out(routed: Sequence[int], steps_by_vehicle: Sequence[Sequence[Step]]) -> list[Unserved]:
    served = {i for steps in steps_by_vehicle for kind, i in steps if kind is VisitKind.JOB}
    return [
        Unserved(j, UnservedReason.NO_VEHICLE_LEFT, "OR-Tools found no room for it in the fleet")
        for j in routed
        if j not in served
    ]


def _late_jobs(problem: Problem, steps_by_vehicle: list[list[Step]]) -> list[Unserved]:
    """Jobs taken off routes that ``planning.schedule`` times later than a rule allows.

    OR-Tools may hide the break in a wait, or wait at a later stop rather than leave later;
    the schedule takes the break at the first gap after its window opens and leaves as early
    as the first stop allows, so it can be late where OR-Tools was not. Each pass drops the
    job at, or else before, the first stop found late.
    """
    late: list[Unserved] = []
    for v, steps in enumerate(steps_by_vehicle):
        while any(kind is VisitKind.JOB for kind, _ in steps):
            miss = _first_miss(problem, timed_route(problem, v, steps))
            if miss is None:
                break
            position, detail = miss
            jobs_before = [
                p for p, (kind, _) in enumerate(steps[: position + 1]) if kind is VisitKind.JOB
            ]
            _, j = steps.pop(jobs_before[-1] if jobs_before else _last_job(steps))
            late.append(Unserved(j, UnservedReason.NO_VEHICLE_LEFT, f"timed, the route {detail}"))
    return late


def _last_job(steps: Sequence[Step]) -> int:
    return max(p for p, (kind, _) in enumerate(steps) if kind is VisitKind.JOB)


def _first_miss(problem: Problem, route: Route) -> tuple[int, str] | None:
    """The first step (an index into the route's steps, which hold no break) found late, and
    what is late; the last step when the route as a whole is."""
    vehicle = problem.vehicles[route.vehicle]
    position = -1
    for visit in route.visits:
        if visit.kind is VisitKind.BREAK:
            if vehicle.break_ is not None and visit.start_s > vehicle.break_.window.end_s:
                return position, f"starts its break at {visit.start_s} s, too late"
            continue
        position += 1
        if visit.kind is VisitKind.JOB:
            window = problem.jobs[visit.index].window
        else:
            window = problem.sites[visit.index].window
        if window is not None and visit.start_s > window.end_s:
            return (
                position,
                f"reaches stop {position + 1} at {visit.start_s} s, it closes at {window.end_s}",
            )
    closes_s = _closes_s(problem, vehicle)
    if route.end_s > closes_s:
        return position, f"ends at {route.end_s} s, after {closes_s} s"
    if vehicle.max_duration_s is not None and route.duration_s > vehicle.max_duration_s:
        return position, f"takes {route.duration_s} s, more than {vehicle.max_duration_s} s"
    taken = any(visit.kind is VisitKind.BREAK for visit in route.visits)
    if vehicle.break_ is not None and not taken and route.end_s > vehicle.break_.window.end_s:
        return position, "works through its break window"
    return None


class _ProgressReport:
    """Passes improving plans to ``SolveOptions.progress``, at most one a second.

    Improving is judged by OR-Tools' objective, which prices left-out jobs; the cost passed on
    is the plan's cost under ``Problem.objective``, so it may rise when more jobs get served.
    """

    def __init__(
        self, problem: Problem, model: _Model, progress: Progress | None, started: float
    ) -> None:
        self._problem = problem
        self._model = model
        self._progress = progress
        self._started = started
        self._best_objective: int | None = None
        self._reported_at: float | None = None

    def __call__(self) -> None:
        if self._progress is None:
            return
        objective = int(self._model.routing.CostVar().Value())
        if self._best_objective is not None and objective >= self._best_objective:
            return
        self._best_objective = objective
        now = time.monotonic()
        if self._reported_at is not None and now - self._reported_at < _PROGRESS_EVERY_S:
            return
        self._reported_at = now
        steps = _steps_by_vehicle(self._model, lambda var: int(var.Value()))
        routes = _routes(self._problem, steps)
        self._progress(now - self._started, solution_cost(self._problem, routes))

    def final(self, cost: int) -> None:
        if self._progress is not None:
            self._progress(time.monotonic() - self._started, cost)
