"""The OR-Tools engine on small problems whose right answer is plain, each solved in <= 1 s.

Locations lie on a line (``_line``: travel 1 s and 1 m per unit of distance) unless a test
needs a scattered instance; ``_assert_keeps_rules`` is this file's own check of the rules,
and ``planning.feasibility`` (written separately) must agree.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

from planning import feasibility
from planning.engine import SolveOptions
from planning.engine_ortools import OrToolsEngine
from planning.errors import NoFeasiblePlan, Unsupported
from planning.problem import (
    Break,
    Job,
    Objective,
    Problem,
    Site,
    SiteKind,
    Solution,
    TimeWindow,
    TravelMatrix,
    Unserved,
    UnservedReason,
    Vehicle,
    VisitKind,
)

DAY = TimeWindow(0, 10_000)


def _line(positions: list[int]) -> TravelMatrix:
    x = np.asarray(positions, dtype=np.int64)
    distance = np.abs(x[:, None] - x[None, :])
    return TravelMatrix(durations_s=distance.copy(), distances_m=distance)


def _problem(
    positions: list[int],
    jobs: list[Job],
    sites: list[Site],
    vehicles: list[Vehicle],
    dimensions: tuple[str, ...] = ("kg",),
    objective: Objective | None = None,
) -> Problem:
    return Problem(
        name="test",
        dimensions=dimensions,
        jobs=tuple(jobs),
        sites=tuple(sites),
        vehicles=tuple(vehicles),
        matrix=_line(positions),
        objective=objective or Objective(),
    )


def _job(key: str, location: int, demand: int = 1, **fields: object) -> Job:
    return Job(key=key, location=location, demand=(demand,), **fields)  # type: ignore[arg-type]


def _vehicle(key: str, capacity: int = 10, **fields: object) -> Vehicle:
    defaults: dict[str, object] = {"start_site": 0, "end_site": 0, "shift": DAY}
    defaults.update(fields)
    return Vehicle(key=key, capacity=(capacity,), **defaults)  # type: ignore[arg-type]


def _solve(problem: Problem, **options: object) -> Solution:
    solution = OrToolsEngine().solve(problem, SolveOptions(time_limit_s=0.5, **options))  # type: ignore[arg-type]
    skipped = options.get("skip_jobs", frozenset())
    assert isinstance(skipped, frozenset)
    _assert_keeps_rules(problem, solution, skipped)
    # The caller reports skipped jobs with diagnosis' reasons; the checker wants them listed.
    listed = solution.unserved + tuple(
        Unserved(j, UnservedReason.WINDOW_UNREACHABLE, "skipped") for j in sorted(skipped)
    )
    assert feasibility.check(problem, dataclasses.replace(solution, unserved=listed)) == []
    return solution


def _assert_keeps_rules(problem: Problem, solution: Solution, skipped: frozenset[int]) -> None:
    """Loads, windows, shifts, durations, trips, the final dump and coverage."""
    served = [0] * len(problem.jobs)
    for unserved in solution.unserved:
        served[unserved.job] += 1
    for route in solution.routes:
        vehicle = problem.vehicles[route.vehicle]
        load = [0] * len(problem.dimensions)
        dumps = 0
        assert route.start_s >= vehicle.shift.start_s
        for visit in route.visits:
            if visit.kind is VisitKind.JOB:
                job = problem.jobs[visit.index]
                served[visit.index] += 1
                load = [a + b for a, b in zip(load, job.demand, strict=True)]
                assert all(a <= c for a, c in zip(load, vehicle.capacity, strict=True)), route
                assert job.window is None or job.window.contains(visit.start_s), visit
            elif visit.kind is VisitKind.DUMP:
                assert visit.index in vehicle.dumps
                load = [0] * len(problem.dimensions)
                dumps += 1
            else:
                assert vehicle.break_ is not None
                assert vehicle.break_.window.contains(visit.start_s)
        assert route.end_s <= vehicle.shift.end_s
        if vehicle.max_duration_s is not None:
            assert route.end_s - route.start_s <= vehicle.max_duration_s
        ends_unloading = problem.sites[vehicle.end_site].unloads
        if not ends_unloading:
            assert not any(load), f"{vehicle.key} returns to the garage carrying {load}"
        if vehicle.max_trips is not None:
            assert dumps + (1 if ends_unloading else 0) <= vehicle.max_trips
    for j, count in enumerate(served):
        assert count == (0 if j in skipped else 1), f"job {j} served or listed {count} times"


def _jobs_of(solution: Solution) -> list[list[int]]:
    return [
        [visit.index for visit in route.visits if visit.kind is VisitKind.JOB]
        for route in solution.routes
    ]


def _kinds(solution: Solution, route: int = 0) -> list[VisitKind]:
    return [visit.kind for visit in solution.routes[route].visits]


DEPOT_DUMP = Site("yard", 0, SiteKind.DEPOT_DUMP)


def test_tiny_cvrp_splits_left_and_right() -> None:
    positions = [0, -20, -10, 10, 20]
    jobs = [_job(f"j{i}", i) for i in range(1, 5)]
    problem = _problem(positions, jobs, [DEPOT_DUMP], [_vehicle("a", 2), _vehicle("b", 2)])

    solution = _solve(problem)

    assert solution.cost == 80
    assert sorted(sorted(jobs) for jobs in _jobs_of(solution)) == [[0, 1], [2, 3]]
    assert solution.engine == "ortools"
    assert solution.unserved == ()


def test_time_windows_force_the_far_job_first() -> None:
    positions = [0, 10, 20]
    jobs = [_job("near", 1, window=TimeWindow(50, 100)), _job("far", 2, window=TimeWindow(0, 25))]
    problem = _problem(positions, jobs, [DEPOT_DUMP], [_vehicle("a")])

    solution = _solve(problem)

    assert _jobs_of(solution) == [[1, 0]]


def test_capacity_forces_a_second_trip_through_the_dump() -> None:
    positions = [0, 10, 20, -10, -20]
    jobs = [_job(f"j{i}", i) for i in range(1, 5)]
    vehicle = _vehicle("a", 2, dumps=(0,), max_trips=2)
    problem = _problem(positions, jobs, [DEPOT_DUMP], [vehicle])

    solution = _solve(problem)

    assert _kinds(solution) == [
        VisitKind.JOB,
        VisitKind.JOB,
        VisitKind.DUMP,
        VisitKind.JOB,
        VisitKind.JOB,
    ]
    assert solution.cost == 80


def test_max_trips_leaves_out_what_a_further_trip_would_carry() -> None:
    positions = [0, 10, 20, -10, -20]
    jobs = [_job(f"j{i}", i) for i in range(1, 5)]
    vehicle = _vehicle("a", 2, dumps=(0,), max_trips=1)
    problem = _problem(positions, jobs, [DEPOT_DUMP], [vehicle])

    solution = _solve(problem)

    assert VisitKind.DUMP not in _kinds(solution)
    assert len(solution.unserved) == 2


# A landfill open all day is folded into the last arc; one with hours is a visit of its own.
@pytest.mark.parametrize("hours", [None, TimeWindow(0, 10_000)])
def test_garage_end_forces_a_last_dump(hours: TimeWindow | None) -> None:
    positions = [0, 30, 10, 20]
    landfill = Site("landfill", 1, SiteKind.DUMP, service_s=5, window=hours)
    jobs = [_job("j1", 2), _job("j2", 3)]
    # One trip, closed by the dump: trips = dump visits when the vehicle ends at a garage.
    vehicle = _vehicle("a", 5, dumps=(1,), max_trips=1)
    problem = _problem(positions, jobs, [Site("garage", 0, SiteKind.DEPOT), landfill], [vehicle])

    solution = _solve(problem)

    assert _kinds(solution) == [VisitKind.JOB, VisitKind.JOB, VisitKind.DUMP]
    assert solution.routes[0].duration_s == 60 + 5


def test_garage_end_with_two_trips() -> None:
    positions = [0, 30, 10, 20]
    sites = [Site("garage", 0, SiteKind.DEPOT), Site("landfill", 1, SiteKind.DUMP)]
    vehicle = _vehicle("a", 1, dumps=(1,), max_trips=2)
    problem = _problem(positions, [_job("j1", 2), _job("j2", 3)], sites, [vehicle])

    solution = _solve(problem)

    assert _kinds(solution) == [VisitKind.JOB, VisitKind.DUMP, VisitKind.JOB, VisitKind.DUMP]


def test_a_truck_unloads_only_at_its_own_dumps() -> None:
    positions = [0, 15, 100, 10, 20]
    sites = [
        DEPOT_DUMP,
        Site("near", 1, SiteKind.DUMP),
        Site("far", 2, SiteKind.DUMP),
    ]
    vehicles = [
        _vehicle("a", 1, dumps=(2,)),
        _vehicle("b", 1, dumps=(1,), fixed_cost=100_000),  # there, but dear to use
    ]
    problem = _problem(positions, [_job("j1", 3), _job("j2", 4)], sites, vehicles)

    solution = _solve(problem)

    assert [route.vehicle for route in solution.routes] == [0]
    dumps = [visit.index for visit in solution.routes[0].visits if visit.kind is VisitKind.DUMP]
    assert dumps == [2]


def test_max_duration_splits_the_work_between_vehicles() -> None:
    positions = [0, 20, -20]
    jobs = [_job("east", 1), _job("west", 2)]
    vehicles = [_vehicle(key, max_duration_s=50) for key in ("a", "b")]
    objective = Objective(per_vehicle=1_000)  # one vehicle would be cheaper if it could
    problem = _problem(positions, jobs, [DEPOT_DUMP], vehicles, objective=objective)

    solution = _solve(problem)

    assert len(solution.routes) == 2
    assert all(route.duration_s == 40 for route in solution.routes)


def test_break_is_taken_inside_its_window() -> None:
    positions = [0, 10, 20, 30, 40]
    jobs = [_job(f"j{i}", i, service_s=10) for i in range(1, 5)]
    vehicle = _vehicle("a", break_=Break(TimeWindow(30, 40), duration_s=15))
    problem = _problem(positions, jobs, [DEPOT_DUMP], [vehicle])

    solution = _solve(problem)

    breaks = [visit for visit in solution.routes[0].visits if visit.kind is VisitKind.BREAK]
    assert len(breaks) == 1
    assert 30 <= breaks[0].start_s <= 40


def test_plans_keep_the_rules_as_the_schedule_times_them() -> None:
    # OR-Tools takes the break while waiting for j1's window; planning.schedule takes it at
    # the first gap after 50 s, reaches j1 too late, and the engine leaves out what is late.
    jobs = [_job("j1", 1, window=TimeWindow(100, 100)), _job("j2", 2, window=TimeWindow(105, 115))]
    vehicle = _vehicle("a", break_=Break(TimeWindow(50, 200), duration_s=30))
    problem = _problem([0, 10, 20], jobs, [DEPOT_DUMP], [vehicle])

    solution = _solve(problem)

    late = [u for u in solution.unserved if u.detail.startswith("timed")]
    assert len(late) + sum(len(jobs) for jobs in _jobs_of(solution)) == 2


def test_second_capacity_dimension_binds() -> None:
    positions = [0, -20, -10, 10, 20]
    jobs = [Job(f"j{i}", i, demand=(1, 1)) for i in range(1, 5)]
    vehicles = [
        Vehicle("a", (100, 2), 0, 0, DAY),
        Vehicle("b", (100, 2), 0, 0, DAY),
    ]
    problem = _problem(positions, jobs, [DEPOT_DUMP], vehicles, dimensions=("kg", "l"))

    solution = _solve(problem)

    assert sorted(len(jobs) for jobs in _jobs_of(solution)) == [2, 2]


def test_skipped_jobs_are_left_to_the_caller() -> None:
    positions = [0, 10, 20, 30]
    jobs = [_job(f"j{i}", i) for i in range(1, 4)]
    problem = _problem(positions, jobs, [DEPOT_DUMP], [_vehicle("a")])

    solution = _solve(problem, skip_jobs=frozenset({1}))

    assert _jobs_of(solution) == [[0, 2]]
    assert solution.unserved == ()


def test_too_small_a_fleet_leaves_jobs_unserved() -> None:
    positions = [0, 10, 20, -10, -20]
    jobs = [_job(f"j{i}", i) for i in range(1, 5)]
    problem = _problem(positions, jobs, [DEPOT_DUMP], [_vehicle("a", 2)])

    solution = _solve(problem)

    assert len(solution.unserved) == 2
    assert {u.reason for u in solution.unserved} == {UnservedReason.NO_VEHICLE_LEFT}


def test_too_small_a_fleet_without_leaving_jobs_out_is_no_plan() -> None:
    positions = [0, 10, 20, -10, -20]
    jobs = [_job(f"j{i}", i) for i in range(1, 5)]
    problem = _problem(positions, jobs, [DEPOT_DUMP], [_vehicle("a", 2)])
    options = SolveOptions(time_limit_s=1.0, allow_unserved=False)

    with pytest.raises(NoFeasiblePlan):
        OrToolsEngine().solve(problem, options)


def test_release_after_the_shift_starts_is_unsupported() -> None:
    problem = _problem([0, 10], [_job("late", 1, release_s=100)], [DEPOT_DUMP], [_vehicle("a")])

    with pytest.raises(Unsupported, match="late"):
        OrToolsEngine().solve(problem, SolveOptions(time_limit_s=1.0))


def test_release_before_every_shift_is_no_obstacle() -> None:
    vehicle = _vehicle("a", shift=TimeWindow(100, 10_000))
    problem = _problem([0, 10], [_job("early", 1, release_s=100)], [DEPOT_DUMP], [vehicle])

    assert _jobs_of(_solve(problem)) == [[0]]


def test_time_limit_holds_on_200_jobs() -> None:
    rng = np.random.default_rng(7)
    points = rng.integers(0, 10_000, size=(201, 2))
    distance = np.rint(np.hypot(*(points[:, None, :] - points[None, :, :]).transpose(2, 0, 1)))
    matrix = TravelMatrix(distance.astype(np.int64), distance.astype(np.int64))
    jobs = tuple(
        Job(f"j{i}", i, demand=(int(rng.integers(1, 4)),), service_s=60) for i in range(1, 201)
    )
    sites = (Site("yard", 0, SiteKind.DEPOT), Site("landfill", 0, SiteKind.DUMP, service_s=600))
    vehicles = tuple(
        Vehicle(f"v{k}", (40,), 0, 0, TimeWindow(0, 40_000), dumps=(1,)) for k in range(4)
    )
    problem = Problem("random", ("kg",), jobs, sites, vehicles, matrix)
    reports: list[tuple[float, int | None]] = []

    started = time.monotonic()
    solution = OrToolsEngine().solve(
        problem, SolveOptions(time_limit_s=1.0, progress=lambda s, c: reports.append((s, c)))
    )
    elapsed_s = time.monotonic() - started

    assert elapsed_s < 2.5
    assert solution.runtime_s <= elapsed_s
    assert reports
    assert reports[-1][1] == solution.cost
    _assert_keeps_rules(problem, solution, frozenset())
    assert feasibility.check(problem, solution) == []


def test_a_truck_carrying_a_load_unloads_before_it_is_full() -> None:
    # A re-plan mid-route: 15 of 20 kg aboard, two 5 kg jobs: a dump visit between them.
    problem = _problem(
        [0, 10, 20, 30],
        jobs=[_job("a", 2, demand=5), _job("b", 3, demand=5)],
        sites=[Site("garage", 0, SiteKind.DEPOT), Site("dump", 1, SiteKind.DUMP)],
        vehicles=[_vehicle("truck", 20, dumps=(1,), initial_load=(15,))],
    )
    solution = _solve(problem)
    assert solution.unserved == ()
    kinds = [visit.kind for visit in solution.routes[0].visits]
    assert kinds.count(VisitKind.DUMP) == 2  # one to make room, one before the garage
