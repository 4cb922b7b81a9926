"""Balanced workloads: whole areas (địa bàn) to trucks, or a cap on the longest day.

Companies often keep a crew on the same streets every day: the collectors know the
households and the households know when the truck comes. ``solve_by_area`` gives each
truck whole areas (longest first, to the truck with the most of its shift still free), then
orders each truck's stops with the engine. Stops with no area go with the nearest truck.
``solve_balanced`` keeps the stops free to move but caps every truck's day near the day's
work per truck.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace

from planning.engine import Engine, SolveOptions
from planning.errors import InvalidValue
from planning.problem import Problem, Route, Solution, Unserved, solution_cost

# A balanced plan's longest working day, as a share of the day's work per truck; each try
# that leaves stops out loosens it by BALANCE_LOOSEN.
BALANCE_SLACK = 1.15
BALANCE_LOOSEN = 1.25
BALANCE_ATTEMPTS = 3
# How much an area's distance from a truck's first area weighs against the truck's booked
# share of its shift (the farthest trip in the city counts as this share).
AREA_NEARNESS = 0.5


@dataclass(frozen=True, slots=True)
class AreaLoad:
    area: str
    jobs: tuple[int, ...]
    work_s: int  # estimated: service, driving between its stops, and unloading trips


def area_loads(problem: Problem, jobs: Sequence[int]) -> list[AreaLoad]:
    """The areas of ``jobs`` (stops with no area left out), largest workload first."""
    by_area: dict[str, list[int]] = defaultdict(list)
    for index in jobs:
        if problem.jobs[index].area:
            by_area[problem.jobs[index].area].append(index)
    return sorted(
        (
            AreaLoad(area, tuple(members), _work_s(problem, members))
            for area, members in by_area.items()
        ),
        key=lambda load: (-load.work_s, load.area),
    )


def assign_areas(problem: Problem, jobs: Sequence[int]) -> dict[int, list[int]]:
    """Vehicle index -> its job indexes. Areas go largest first to the truck where it adds
    least, counting both its booked share of the shift and how far the area lies from the
    truck's first area (so a truck's areas are neighbours); a stop with no area goes with
    the truck of the nearest stop that has one."""
    loads = area_loads(problem, jobs)
    if not loads:
        raise InvalidValue("by_area: no stop has an area (địa bàn); give the points areas")
    durations = problem.matrix.durations_s
    farthest_s = max(1, int(durations.max()))
    shift_s = [
        min(v.shift.end_s - v.shift.start_s, v.max_duration_s or math.inf) for v in problem.vehicles
    ]
    booked = [0] * len(problem.vehicles)
    anchor: dict[int, int] = {}  # vehicle -> location of its first area
    assigned: dict[int, list[int]] = defaultdict(list)
    for load in loads:
        here = problem.jobs[load.jobs[0]].location

        def added(v: int, here: int = here, work_s: int = load.work_s) -> tuple[float, int]:
            away = int(durations[anchor[v], here]) / farthest_s if v in anchor else 0.0
            return (booked[v] + work_s) / shift_s[v] + AREA_NEARNESS * away, v

        vehicle = min(range(len(problem.vehicles)), key=added)
        anchor.setdefault(vehicle, here)
        booked[vehicle] += load.work_s
        assigned[vehicle].extend(load.jobs)
    owner = {job: vehicle for vehicle, members in assigned.items() for job in members}
    placed = list(owner)
    for index in jobs:
        if index not in owner:
            here = problem.jobs[index].location
            nearest = min(placed, key=lambda j: (durations[here, problem.jobs[j].location], j))
            assigned[owner[nearest]].append(index)
    return dict(assigned)


def solve_by_area(problem: Problem, engine: Engine, options: SolveOptions) -> Solution:
    started = time.monotonic()
    jobs = [n for n in range(len(problem.jobs)) if n not in options.skip_jobs]
    assigned = assign_areas(problem, jobs)
    share_s = max(1.0, options.time_limit_s / max(1, len(assigned)))
    routes: list[Route] = []
    unserved: list[Unserved] = []
    for vehicle, members in sorted(assigned.items()):
        own = set(members)
        alone = replace(problem, vehicles=(problem.vehicles[vehicle],))
        solved = engine.solve(
            alone,
            replace(
                options,
                time_limit_s=share_s,
                progress=None,
                skip_jobs=frozenset(n for n in range(len(problem.jobs)) if n not in own),
            ),
        )
        routes += [replace(route, vehicle=vehicle) for route in solved.routes]
        unserved += solved.unserved
        if options.progress is not None:
            options.progress(time.monotonic() - started, None)
    return Solution(
        tuple(routes),
        tuple(unserved),
        solution_cost(problem, routes),
        f"{engine.name} by area",
        time.monotonic() - started,
    )


def _tighter(limit_s: int | None, cap_s: int) -> int:
    return cap_s if limit_s is None else min(limit_s, cap_s)


def _work_s(problem: Problem, members: Sequence[int]) -> int:
    """Service, a nearest-neighbour tour from the first vehicle's start, and the unloading
    trips its weight needs (a rough figure: it only ranks areas against shifts)."""
    durations = problem.matrix.durations_s
    vehicle = problem.vehicles[0]
    here = problem.sites[vehicle.start_site].location
    left = set(members)
    travel = 0
    while left:
        nearest = min(left, key=lambda j: (durations[here, problem.jobs[j].location], j))
        travel += int(durations[here, problem.jobs[nearest].location])
        here = problem.jobs[nearest].location
        left.remove(nearest)
    service = sum(problem.jobs[j].service_s for j in members)
    weight = sum(problem.jobs[j].demand[0] for j in members)
    trips = math.ceil(weight / vehicle.capacity[0]) if weight else 0
    unload_s = 0
    if vehicle.dumps and trips:
        dump = problem.sites[vehicle.dumps[0]]
        unload_s = trips * (dump.service_s + 2 * int(durations[here, dump.location]))
    return travel + service + unload_s


def solve_balanced(problem: Problem, engine: Engine, options: SolveOptions) -> Solution:
    """The day's work spread over every truck in service: plan once for the cheapest plan,
    then again with no truck's day longer than 1.15 times the work per truck, loosening
    that cap a step at a time while it leaves stops unserved that the first plan served."""
    started = time.monotonic()
    first = engine.solve(problem, replace(options, time_limit_s=options.time_limit_s * 0.3))
    work_s = sum(route.end_s - route.start_s for route in first.routes)
    cap_s = BALANCE_SLACK * work_s / len(problem.vehicles)
    for attempt in range(BALANCE_ATTEMPTS):
        left_s = options.time_limit_s - (time.monotonic() - started)
        # the first try usually holds: it gets most of the time, a looser one the rest
        share_s = max(1.0, left_s * (0.7 if attempt < BALANCE_ATTEMPTS - 1 else 1.0))
        capped = replace(
            problem,
            vehicles=tuple(
                replace(v, max_duration_s=_tighter(v.max_duration_s, math.ceil(cap_s)))
                for v in problem.vehicles
            ),
        )
        second = engine.solve(capped, replace(options, time_limit_s=share_s))
        if len(second.unserved) <= len(first.unserved):
            return Solution(
                second.routes,
                second.unserved,
                solution_cost(problem, second.routes),
                f"{engine.name} balanced",
                time.monotonic() - started,
            )
        cap_s *= BALANCE_LOOSEN
    return first
