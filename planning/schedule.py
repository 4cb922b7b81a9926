"""From a vehicle's sequence of stops to a timed route, by the rules in ``planning.problem``.

Engines decide the order; this module gives every engine the same times: wait for windows
and releases, leave as late as the route allows without ending later or missing a window
(the working day is no longer than it must be), and take the break in the first gap, at or
after its window opens, that keeps every window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from planning.problem import Problem, Route, Visit, VisitKind

Step = tuple[VisitKind, int]  # (JOB, job index) or (DUMP, site index)


@dataclass(frozen=True, slots=True)
class _Timed:
    route: Route
    late: int  # windows missed, a break outside its window, the shift or duration overrun


def timed_route(problem: Problem, vehicle_index: int, steps: Sequence[Step]) -> Route:
    """The route driving ``steps`` in order, timed; it is not checked here (see feasibility)."""
    vehicle = problem.vehicles[vehicle_index]
    earliest = vehicle.shift.start_s
    first = _forward(problem, vehicle_index, steps, earliest, None)
    # Latest start with the same end and no more missed windows: times only grow with the
    # start, so the condition holds up to some delay and not beyond (binary search).
    low, high = 0, max(0, vehicle.shift.end_s - first.route.start_s)
    while low < high:
        delay = (low + high + 1) // 2
        later = _forward(problem, vehicle_index, steps, first.route.start_s + delay, None)
        if later.route.end_s == first.route.end_s and later.late <= first.late:
            low = delay
        else:
            high = delay - 1
    best = _forward(problem, vehicle_index, steps, first.route.start_s + low, None)
    if vehicle.break_ is None or best.late == 0:
        return best.route
    # Where else the break could go: the first gap that keeps every window wins.
    for position in range(len(steps) + 1):
        moved = _forward(problem, vehicle_index, steps, best.route.start_s, position)
        if moved.late < best.late:
            best = moved
        if best.late == 0:
            break
    return best.route


def _forward(
    problem: Problem,
    vehicle_index: int,
    steps: Sequence[Step],
    start_s: int,
    break_before: int | None,
) -> _Timed:
    """Times from leaving at ``start_s``. The break goes before step ``break_before``
    (``len(steps)``: before driving home); None: before the first step whose arrival would
    reach the break window's start."""
    vehicle = problem.vehicles[vehicle_index]
    durations = problem.matrix.durations_s
    distances = problem.matrix.distances_m
    start_s = max(start_s, _trip_release(problem, steps, 0))
    here = problem.sites[vehicle.start_site].location
    clock = start_s
    distance = 0
    late = 0
    visits: list[Visit] = []
    pause = vehicle.break_

    def take_break() -> None:
        nonlocal clock, pause, late
        assert pause is not None
        begin = max(clock, pause.window.start_s)
        late += begin > pause.window.end_s
        visits.append(Visit(VisitKind.BREAK, -1, begin, begin, begin + pause.duration_s))
        clock = begin + pause.duration_s
        pause = None

    for position, (kind, index) in enumerate(steps):
        if kind is VisitKind.JOB:
            job = problem.jobs[index]
            there, service, window = job.location, job.service_s, job.window
        else:
            site = problem.sites[index]
            there, service, window = site.location, site.service_s, site.window
        travel = int(durations[here, there])
        if pause is not None and (
            position == break_before
            or (break_before is None and clock + travel >= pause.window.start_s)
        ):
            take_break()
        arrival = clock + travel
        begin = arrival if window is None else max(arrival, window.start_s)
        late += window is not None and begin > window.end_s
        departure = begin + service
        if kind is VisitKind.DUMP:
            departure = max(departure, _trip_release(problem, steps, position + 1))
        visits.append(Visit(kind, index, arrival, begin, departure))
        distance += int(distances[here, there])
        clock, here = departure, there
    end_location = problem.sites[vehicle.end_site].location
    travel = int(durations[here, end_location])
    if pause is not None and (
        break_before == len(steps)
        or (break_before is None and clock + travel >= pause.window.start_s)
    ):
        take_break()
    end_s = clock + travel
    distance += int(distances[here, end_location])
    late += end_s > vehicle.shift.end_s
    if vehicle.max_duration_s is not None:
        late += end_s - start_s > vehicle.max_duration_s
    if pause is not None and end_s > pause.window.end_s:
        late += 1  # worked through the break window without a break
    route = Route(vehicle_index, start_s, tuple(visits), end_s, distance, end_s - start_s)
    return _Timed(route, late)


def _trip_release(problem: Problem, steps: Sequence[Step], begin: int) -> int:
    """The latest release among the jobs of the trip starting at ``steps[begin]``."""
    release = 0
    for kind, index in steps[begin:]:
        if kind is VisitKind.DUMP:
            break
        release = max(release, problem.jobs[index].release_s)
    return release
