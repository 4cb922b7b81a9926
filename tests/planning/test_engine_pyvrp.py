"""The PyVRP engine on small hand-made problems whose best plans are known, each solved in
under a second; every plan is also judged by a check written here and by
``planning.feasibility``."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pytest

from planning import feasibility
from planning.engine import SolveOptions
from planning.engine_pyvrp import PyVrpEngine
from planning.errors import NoFeasiblePlan
from planning.problem import (
    Break,
    Job,
    Objective,
    Problem,
    Route,
    Site,
    SiteKind,
    Solution,
    TimeWindow,
    TravelMatrix,
    UnservedReason,
    Vehicle,
    VisitKind,
    solution_cost,
)

SHIFT = TimeWindow(0, 10_000)
QUICK = SolveOptions(time_limit_s=0.3)


def on_a_line(positions_m: Sequence[int]) -> TravelMatrix:
    """Locations on a straight road driven at 1 m/s: distance and duration are |a - b|."""
    at = np.array(positions_m, dtype=np.int64)
    matrix = np.abs(at[:, None] - at[None, :]).astype(np.int64)
    return TravelMatrix(durations_s=matrix, distances_m=matrix.copy())


def problem_of(
    positions_m: Sequence[int],
    jobs: Sequence[Job],
    sites: Sequence[Site],
    vehicles: Sequence[Vehicle],
    dimensions: tuple[str, ...] = ("kg",),
) -> Problem:
    return Problem(
        name="hand-made",
        dimensions=dimensions,
        jobs=tuple(jobs),
        sites=tuple(sites),
        vehicles=tuple(vehicles),
        matrix=on_a_line(positions_m),
    )


def depot_at_0() -> Site:
    return Site("depot", 0, SiteKind.DEPOT_DUMP)


def job(
    location: int,
    demand: int = 1,
    *,
    service_s: int = 0,
    window: TimeWindow | None = None,
    release_s: int = 0,
) -> Job:
    return Job(f"job-{location}", location, (demand,), service_s, window, release_s)


def solve(problem: Problem, options: SolveOptions = QUICK) -> Solution:
    solution = PyVrpEngine().solve(problem, options)
    assert check(problem, solution, options.skip_jobs) == []
    judged = feasibility.check(problem, solution)
    if options.skip_jobs:  # skipped jobs are reported by the caller, not in the solution
        judged = [violation for violation in judged if violation.rule != "served_once"]
    assert [str(violation) for violation in judged] == []
    return solution


def check(problem: Problem, solution: Solution, skipped: frozenset[int]) -> list[str]:
    """The rules of ``planning.problem`` that these tests lean on, checked on their own."""
    found: list[str] = []
    seen = [job_index for route in solution.routes for job_index in job_indexes(route)]
    seen += [unserved.job for unserved in solution.unserved]
    if sorted(seen) != sorted(set(range(len(problem.jobs))) - skipped):
        found.append(f"jobs served or unserved: {sorted(seen)}")
    for route in solution.routes:
        found += check_route(problem, route)
    if solution.cost != solution_cost(problem, solution.routes):
        found.append(f"cost {solution.cost}")
    return found


def check_route(problem: Problem, route: Route) -> list[str]:
    vehicle = problem.vehicles[route.vehicle]
    found: list[str] = []
    load = [0] * len(problem.dimensions)
    trip_left_s = route.start_s
    for visit in route.visits:
        if visit.kind is VisitKind.DUMP:
            load = [0] * len(problem.dimensions)
            trip_left_s = visit.departure_s
            continue
        if visit.kind is VisitKind.BREAK:
            continue
        served = problem.jobs[visit.index]
        load = [aboard + more for aboard, more in zip(load, served.demand, strict=True)]
        if any(aboard > room for aboard, room in zip(load, vehicle.capacity, strict=True)):
            found.append(f"{vehicle.key}: {load} aboard after {served.key}")
        if served.window is not None and not served.window.contains(visit.start_s):
            found.append(f"{vehicle.key}: {served.key} starts at {visit.start_s} s")
        if trip_left_s < served.release_s:
            found.append(f"{vehicle.key}: {served.key} on a trip leaving at {trip_left_s} s")
    if not vehicle.shift.contains(route.start_s) or not vehicle.shift.contains(route.end_s):
        found.append(f"{vehicle.key}: {route.start_s}..{route.end_s} s outside the shift")
    if vehicle.max_duration_s is not None and route.duration_s > vehicle.max_duration_s:
        found.append(f"{vehicle.key}: {route.duration_s} s long")
    if not problem.sites[vehicle.end_site].unloads and any(load):
        found.append(f"{vehicle.key}: {load} carried into the garage")
    return found


def job_indexes(route: Route) -> list[int]:
    return [visit.index for visit in route.visits if visit.kind is VisitKind.JOB]


def kinds(route: Route) -> list[VisitKind]:
    return [visit.kind for visit in route.visits]


# ---------------------------------------------------------------- the plans


def test_two_clusters_take_one_truck_each() -> None:
    # Two jobs 10 m left of the depot and two 10 m right; two jobs fill a truck.
    problem = problem_of(
        [0, -10, -11, 10, 11],
        jobs=[job(1), job(2), job(3), job(4)],
        sites=[depot_at_0()],
        vehicles=[Vehicle(f"truck-{n}", (2,), 0, 0, SHIFT) for n in range(3)],
    )
    solution = solve(problem)
    assert solution.cost == 44
    assert sorted(sorted(job_indexes(route)) for route in solution.routes) == [[0, 1], [2, 3]]
    assert len({route.vehicle for route in solution.routes}) == 2
    assert solution.unserved == ()
    assert solution.engine == "pyvrp"


def test_time_windows_force_the_farther_job_first() -> None:
    near = job(1, window=TimeWindow(50, 60))
    far = job(2, window=TimeWindow(0, 25))
    problem = problem_of(
        [0, 10, 20],
        jobs=[near, far],
        sites=[depot_at_0()],
        vehicles=[Vehicle("truck", (5,), 0, 0, SHIFT)],
    )
    (route,) = solve(problem).routes
    assert job_indexes(route) == [1, 0]
    # it leaves as late as the far job's window allows, so nobody waits at the near one
    assert [visit.start_s for visit in route.visits] == [25, 50]


def test_full_truck_unloads_at_the_dump_between_trips() -> None:
    # Four jobs beside a dump 100 m out; the truck holds two, so it unloads in between.
    sites = [depot_at_0(), Site("landfill", 1, SiteKind.DUMP, service_s=30)]
    problem = problem_of(
        [0, 100, 90, 91, 92, 93],
        jobs=[job(2), job(3), job(4), job(5)],
        sites=sites,
        vehicles=[Vehicle("truck", (2,), 0, 0, SHIFT, dumps=(1,))],
    )
    solution = solve(problem)
    (route,) = solution.routes
    assert solution.unserved == ()
    assert kinds(route)[2] is VisitKind.DUMP
    assert kinds(route).count(VisitKind.JOB) == 4
    dump = route.visits[2]
    assert dump.departure_s - dump.start_s == 30  # the landfill's unloading time


def test_garage_end_unloads_at_the_dump_before_returning() -> None:
    sites = [Site("garage", 0, SiteKind.DEPOT), Site("landfill", 1, SiteKind.DUMP, service_s=60)]
    problem = problem_of(
        [0, 100, 40, 60],
        jobs=[job(2), job(3)],
        sites=sites,
        vehicles=[Vehicle("truck", (5,), 0, 0, SHIFT, dumps=(1,))],
    )
    (route,) = solve(problem).routes
    assert kinds(route) == [VisitKind.JOB, VisitKind.JOB, VisitKind.DUMP]
    dump = route.visits[-1]
    assert (dump.index, dump.departure_s - dump.start_s) == (1, 60)
    assert route.end_s == dump.departure_s + 100  # then the drive back to the garage
    assert route.distance_m == 200


def test_garage_end_picks_the_dump_nearest_the_garage() -> None:
    sites = [
        Site("garage", 0, SiteKind.DEPOT),
        Site("far landfill", 1, SiteKind.DUMP),
        Site("near transfer station", 2, SiteKind.DUMP),
    ]
    problem = problem_of(
        [0, 500, 30, 40],
        jobs=[job(3)],
        sites=sites,
        vehicles=[Vehicle("truck", (5,), 0, 0, SHIFT, dumps=(1, 2))],
    )
    (route,) = solve(problem).routes
    assert [(visit.kind, visit.index) for visit in route.visits][-1] == (VisitKind.DUMP, 2)


def test_vehicle_without_dump_does_not_carry_waste_into_the_garage() -> None:
    problem = problem_of(
        [0, 10, 20],
        jobs=[job(1), job(2, demand=0)],
        sites=[Site("garage", 0, SiteKind.DEPOT)],
        vehicles=[Vehicle("truck", (5,), 0, 0, SHIFT)],
    )
    solution = solve(problem)
    assert [job_indexes(route) for route in solution.routes] == [[1]]
    assert [unserved.job for unserved in solution.unserved] == [0]


def test_release_times_hold_back_the_trip() -> None:
    # The late job can only go on a trip that leaves the depot or the dump at 1000 s or later.
    sites = [depot_at_0(), Site("landfill", 1, SiteKind.DUMP, service_s=30)]
    early = job(2, demand=2, window=TimeWindow(0, 500))
    late = job(3, release_s=1_000)
    problem = problem_of(
        [0, 50, 40, 45],
        jobs=[early, late],
        sites=sites,
        vehicles=[Vehicle("truck", (2,), 0, 0, SHIFT, dumps=(1,))],
    )
    (route,) = solve(problem).routes
    assert job_indexes(route) == [0, 1]
    assert kinds(route) == [VisitKind.JOB, VisitKind.DUMP, VisitKind.JOB]
    assert route.visits[1].departure_s >= 1_000


def test_release_time_of_the_first_trip_delays_the_start() -> None:
    problem = problem_of(
        [0, 10],
        jobs=[job(1, release_s=700)],
        sites=[depot_at_0()],
        vehicles=[Vehicle("truck", (2,), 0, 0, SHIFT)],
    )
    (route,) = solve(problem).routes
    assert route.start_s >= 700


def test_max_duration_splits_the_work() -> None:
    # One truck could do both ends of the road in 400 s; 250 s allows only one end each.
    problem = problem_of(
        [0, -100, 100],
        jobs=[job(1), job(2)],
        sites=[depot_at_0()],
        vehicles=[Vehicle(f"truck-{n}", (5,), 0, 0, SHIFT, max_duration_s=250) for n in range(2)],
    )
    solution = solve(problem)
    assert len(solution.routes) == 2
    assert all(route.duration_s == 200 for route in solution.routes)


def test_litres_bind_before_kilograms() -> None:
    jobs = [Job(f"bin-{n}", n, (10, 1)) for n in (1, 2, 3, 4)]
    problem = problem_of(
        [0, 5, 6, 7, 8],
        jobs=jobs,
        sites=[depot_at_0()],
        vehicles=[Vehicle(f"truck-{n}", (1_000, 2), 0, 0, SHIFT) for n in range(3)],
        dimensions=("kg", "l"),
    )
    solution = solve(problem)
    assert sorted(len(job_indexes(route)) for route in solution.routes) == [2, 2]


def test_max_trips_limits_the_dump_visits() -> None:
    # Six jobs, two per load, but only two trips: two jobs must be left out.
    sites = [depot_at_0(), Site("landfill", 1, SiteKind.DUMP)]
    problem = problem_of(
        [0, 20, 10, 11, 12, 13, 14, 15],
        jobs=[job(n) for n in range(2, 8)],
        sites=sites,
        vehicles=[Vehicle("truck", (2,), 0, 0, SHIFT, dumps=(1,), max_trips=2)],
    )
    solution = solve(problem)
    (route,) = solution.routes
    assert kinds(route).count(VisitKind.DUMP) == 1
    assert len(solution.unserved) == 2


def test_break_fits_in_the_shift_cut_by_its_length() -> None:
    # 400 s of driving, 50 s of service and the 60 s break fill the 510 s shift exactly.
    lunch = Break(TimeWindow(120, 200), duration_s=60)
    problem = problem_of(
        [0, 100, 200],
        jobs=[job(1, service_s=50), job(2)],
        sites=[depot_at_0()],
        vehicles=[Vehicle("truck", (5,), 0, 0, TimeWindow(0, 510), break_=lunch)],
    )
    (route,) = solve(problem).routes
    assert kinds(route) == [VisitKind.JOB, VisitKind.BREAK, VisitKind.JOB]
    assert route.end_s == 510


def test_break_longer_than_the_slack_leaves_the_job_out() -> None:
    lunch = Break(TimeWindow(120, 200), duration_s=61)
    problem = problem_of(
        [0, 100, 200],
        jobs=[job(1, service_s=50), job(2)],
        sites=[depot_at_0()],
        vehicles=[Vehicle("truck", (5,), 0, 0, TimeWindow(0, 510), break_=lunch)],
    )
    solution = solve(problem)
    assert [unserved.job for unserved in solution.unserved] == [1]


# ---------------------------------------------------------------- what is left out


def test_skipped_jobs_are_left_out_entirely() -> None:
    problem = problem_of(
        [0, 10, 20, 30],
        jobs=[job(1), job(2), job(3)],
        sites=[depot_at_0()],
        vehicles=[Vehicle("truck", (5,), 0, 0, SHIFT)],
    )
    options = SolveOptions(time_limit_s=0.3, skip_jobs=frozenset({1}))
    solution = solve(problem, options)
    assert [job_indexes(route) for route in solution.routes] == [[0, 2]]
    assert solution.unserved == ()


def small_fleet() -> Problem:
    return problem_of(
        [0, 10, 11, 12, 13],
        jobs=[job(1), job(2), job(3), job(4)],
        sites=[depot_at_0()],
        vehicles=[Vehicle("truck", (2,), 0, 0, SHIFT)],
    )


def test_small_fleet_leaves_jobs_out_as_no_vehicle_left() -> None:
    solution = solve(small_fleet())
    assert len(job_indexes(solution.routes[0])) == 2
    assert len(solution.unserved) == 2
    assert {unserved.reason for unserved in solution.unserved} == {UnservedReason.NO_VEHICLE_LEFT}


def test_small_fleet_without_leaving_jobs_out_has_no_feasible_plan() -> None:
    options = SolveOptions(time_limit_s=0.3, allow_unserved=False)
    with pytest.raises(NoFeasiblePlan, match="no feasible plan"):
        PyVrpEngine().solve(small_fleet(), options)


def test_jobs_are_served_when_serving_costs_more_than_the_truck() -> None:
    problem = Problem(
        name="dear trucks",
        dimensions=("kg",),
        jobs=(job(1), job(2)),
        sites=(depot_at_0(),),
        vehicles=tuple(Vehicle(f"truck-{n}", (1,), 0, 0, SHIFT, fixed_cost=5_000) for n in (1, 2)),
        matrix=on_a_line([0, 1_000, -1_000]),
        objective=Objective(per_m=3, per_s=1, per_vehicle=700),
    )
    solution = solve(problem)
    assert solution.unserved == ()
    assert solution.cost == 2 * (3 * 2_000 + 2_000 + 700 + 5_000)


# ---------------------------------------------------------------- time and progress


def random_problem(job_count: int, seed: int) -> Problem:
    rng = np.random.default_rng(seed)
    points = rng.integers(0, 10_000, size=(job_count + 2, 2))
    gaps = points[:, None, :] - points[None, :, :]
    distances = np.rint(np.hypot(gaps[..., 0], gaps[..., 1])).astype(np.int64)
    matrix = TravelMatrix(durations_s=distances // 8, distances_m=distances)
    jobs = []
    for n in range(job_count):
        opens_s = int(rng.integers(6 * 3600, 12 * 3600))
        window = TimeWindow(opens_s, opens_s + 3600) if n % 3 == 0 else None
        jobs.append(Job(f"bin-{n}", n + 2, (int(rng.integers(1, 4)),), 120, window))
    sites = (Site("garage", 0, SiteKind.DEPOT), Site("landfill", 1, SiteKind.DUMP, 600))
    shift = TimeWindow(6 * 3600, 14 * 3600)
    vehicles = tuple(Vehicle(f"truck-{n}", (10,), 0, 0, shift, dumps=(1,)) for n in range(20))
    return Problem("random", ("kg",), tuple(jobs), sites, vehicles, matrix)


def test_time_limit_holds_on_200_jobs() -> None:
    problem = random_problem(200, seed=1)
    began_s = time.perf_counter()
    solution = solve(problem, SolveOptions(time_limit_s=1.0))
    assert time.perf_counter() - began_s < 2.0
    assert solution.runtime_s < 1.5
    assert solution.routes


def test_a_large_day_the_fleet_can_take_is_served_whole_at_a_short_limit() -> None:
    # 300 stops, 20 trucks with room to spare: every job required first, nothing left out
    problem = random_problem(300, seed=3)
    solution = solve(problem, SolveOptions(time_limit_s=2.0))
    assert solution.unserved == ()
    assert solution.runtime_s < 3.0


def test_progress_is_reported_about_once_a_second() -> None:
    reports: list[tuple[float, int | None]] = []
    options = SolveOptions(time_limit_s=1.0, progress=lambda s, cost: reports.append((s, cost)))
    solution = solve(random_problem(40, seed=2), options)
    assert 2 <= len(reports) <= 4
    assert [elapsed_s for elapsed_s, _ in reports] == sorted(elapsed_s for elapsed_s, _ in reports)
    assert reports[-1] == (solution.runtime_s, solution.cost)
