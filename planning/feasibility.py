"""The feasibility checker: the oracle every engine's plan is judged by.

It reads only the problem and the claimed routes, and checks the claims against the rules in
``planning.problem`` without sharing code with the engines or ``planning.schedule``: any
timing that keeps the rules passes, not only the one our scheduler makes.
"""

from __future__ import annotations

from dataclasses import dataclass

from planning.problem import (
    Problem,
    Route,
    Solution,
    Vehicle,
    VisitKind,
    solution_cost,
)


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str  # "served_once", "capacity", "window", ...
    vehicle: str  # the vehicle's key, "" for plan-wide rules
    position: int  # the visit's position in its route, -1 for the route as a whole
    detail: str

    def __str__(self) -> str:
        where = f" vehicle {self.vehicle}" if self.vehicle else ""
        if self.position >= 0:
            where += f" visit {self.position + 1}"
        return f"{self.rule}{where}: {self.detail}"


def check(problem: Problem, solution: Solution) -> list[Violation]:
    violations = _coverage(problem, solution)
    used: set[int] = set()
    for route in solution.routes:
        if not 0 <= route.vehicle < len(problem.vehicles):
            violations.append(Violation("vehicle", "", -1, f"no vehicle {route.vehicle}"))
            continue
        if route.vehicle in used:
            key = problem.vehicles[route.vehicle].key
            violations.append(Violation("vehicle", key, -1, "has two routes"))
        used.add(route.vehicle)
        violations.extend(_route(problem, route))
    if not violations:
        recomputed = solution_cost(problem, solution.routes)
        if recomputed != solution.cost:
            violations.append(
                Violation("cost", "", -1, f"claimed {solution.cost}, the matrix gives {recomputed}")
            )
    return violations


def _coverage(problem: Problem, solution: Solution) -> list[Violation]:
    seen = [0] * len(problem.jobs)
    for route in solution.routes:
        for visit in route.visits:
            if visit.kind is VisitKind.JOB:
                if not 0 <= visit.index < len(problem.jobs):
                    return [Violation("served_once", "", -1, f"no job {visit.index}")]
                seen[visit.index] += 1
    for unserved in solution.unserved:
        seen[unserved.job] += 1
    return [
        Violation("served_once", "", -1, f"job {problem.jobs[i].key} appears {count} times")
        for i, count in enumerate(seen)
        if count != 1
    ]


def _route(problem: Problem, route: Route) -> list[Violation]:
    vehicle = problem.vehicles[route.vehicle]
    found: list[Violation] = []

    def fail(rule: str, position: int, detail: str) -> None:
        found.append(Violation(rule, vehicle.key, position, detail))

    durations = problem.matrix.durations_s
    distances = problem.matrix.distances_m
    start_site = problem.sites[vehicle.start_site]
    end_site = problem.sites[vehicle.end_site]
    if route.start_s < vehicle.shift.start_s:
        fail("shift", -1, f"leaves at {route.start_s} s, the shift starts {vehicle.shift.start_s}")
    here = start_site.location
    ready = route.start_s  # earliest time the truck can leave ``here``
    trip_start = route.start_s  # when the current trip left the depot or the last dump
    load = list(vehicle.initial_load) or [0] * len(problem.dimensions)
    dumps = 0
    breaks = 0
    distance = 0
    for position, visit in enumerate(route.visits):
        if visit.kind is VisitKind.BREAK:
            breaks += 1
            taken = vehicle.break_
            if taken is None:
                fail("break", position, "the vehicle has no break")
                continue
            if not taken.window.contains(visit.start_s):
                fail("break", position, f"starts at {visit.start_s} s, outside {taken.window}")
            if visit.start_s < ready:
                fail("time", position, f"break starts at {visit.start_s} s, before {ready}")
            if visit.departure_s < visit.start_s + taken.duration_s:
                fail("break", position, f"shorter than {taken.duration_s} s")
            ready = max(ready, visit.departure_s)
            continue
        if visit.kind is VisitKind.JOB:
            job = problem.jobs[visit.index]
            there, service, window, name = job.location, job.service_s, job.window, job.key
            if trip_start < job.release_s:
                fail(
                    "release",
                    position,
                    f"{name} is released at {job.release_s} s, the trip left at {trip_start}",
                )
            for d, amount in enumerate(job.demand):
                load[d] += amount
                if load[d] > vehicle.capacity[d]:
                    fail(
                        "capacity",
                        position,
                        f"{load[d]} {problem.dimensions[d]} aboard after"
                        f" {name}, capacity {vehicle.capacity[d]}",
                    )
        else:
            if visit.index not in vehicle.dumps:
                fail("dump", position, f"site {visit.index} is not one of the vehicle's dumps")
                continue
            site = problem.sites[visit.index]
            there, service, window, name = site.location, site.service_s, site.window, site.key
            load = [0] * len(problem.dimensions)
            dumps += 1
        earliest_arrival = ready + int(durations[here, there])
        if visit.arrival_s < earliest_arrival:
            fail(
                "time",
                position,
                f"arrives at {name} at {visit.arrival_s} s, cannot before {earliest_arrival}",
            )
        if visit.start_s < visit.arrival_s:
            fail("time", position, f"starts {name} before arriving")
        if window is not None and not window.contains(visit.start_s):
            fail(
                "window",
                position,
                f"{name} starts at {visit.start_s} s, outside [{window.start_s}, {window.end_s}]",
            )
        if visit.departure_s < visit.start_s + service:
            fail("time", position, f"leaves {name} before its {service} s of service")
        distance += int(distances[here, there])
        here, ready = there, visit.departure_s
        if visit.kind is VisitKind.DUMP:
            trip_start = visit.departure_s
    earliest_end = ready + int(durations[here, end_site.location])
    distance += int(distances[here, end_site.location])
    found.extend(_route_end(vehicle, route, earliest_end, found_break=breaks))
    if any(load) and not end_site.unloads:
        fail("unload", -1, f"returns to {end_site.key} carrying {load}")
    if end_site.window is not None and route.end_s > end_site.window.end_s:
        fail(
            "window",
            -1,
            f"reaches {end_site.key} at {route.end_s} s, it closes {end_site.window.end_s}",
        )
    trips = dumps + (1 if end_site.unloads else 0)
    if vehicle.max_trips is not None and trips > vehicle.max_trips:
        fail("trips", -1, f"{trips} trips, at most {vehicle.max_trips}")
    if distance != route.distance_m:
        fail("distance", -1, f"claimed {route.distance_m} m, the matrix gives {distance}")
    return found


def _route_end(
    vehicle: Vehicle, route: Route, earliest_end: int, *, found_break: int
) -> list[Violation]:
    found: list[Violation] = []
    if route.end_s < earliest_end:
        found.append(
            Violation(
                "time", vehicle.key, -1, f"ends at {route.end_s} s, cannot before {earliest_end}"
            )
        )
    if route.end_s > vehicle.shift.end_s:
        found.append(
            Violation(
                "shift",
                vehicle.key,
                -1,
                f"ends at {route.end_s} s, the shift ends {vehicle.shift.end_s}",
            )
        )
    duration = route.end_s - route.start_s
    if vehicle.max_duration_s is not None and duration > vehicle.max_duration_s:
        found.append(
            Violation(
                "duration", vehicle.key, -1, f"{duration} s, at most {vehicle.max_duration_s}"
            )
        )
    if route.duration_s != duration:
        found.append(
            Violation(
                "duration",
                vehicle.key,
                -1,
                f"claimed {route.duration_s} s, start to end is {duration}",
            )
        )
    wanted = vehicle.break_
    if found_break > 1:
        found.append(Violation("break", vehicle.key, -1, f"{found_break} breaks, one is due"))
    elif wanted is not None and found_break == 0 and route.end_s > wanted.window.end_s:
        found.append(
            Violation("break", vehicle.key, -1, "works through the break window without a break")
        )
    return found
