"""Area-based planning: every area (địa bàn) stays with one truck, the trucks' workloads
are balanced, and each truck's route keeps every rule (the feasibility checker)."""

from __future__ import annotations

import dataclasses
import random

import numpy as np

from planning.assignment import area_loads, assign_areas, solve_balanced, solve_by_area
from planning.engine import SolveOptions
from planning.engine_pyvrp import PyVrpEngine
from planning.feasibility import check
from planning.problem import (
    Job,
    Objective,
    Problem,
    Site,
    SiteKind,
    TimeWindow,
    TravelMatrix,
    Vehicle,
    VisitKind,
)

AREAS = {"VQ-01": (0, 0), "VQ-02": (3000, 0), "VQ-03": (0, 3000), "VQ-04": (3000, 3000)}


def city(points_per_area: dict[str, int], vehicles: int = 2) -> Problem:
    rng = random.Random(7)
    xy = [(1500.0, 1500.0), (1500.0, 1600.0)]  # depot (garage), dump
    areas = []
    for area, count in points_per_area.items():
        cx, cy = AREAS[area]
        for _ in range(count):
            xy.append((cx + rng.uniform(0, 600), cy + rng.uniform(0, 600)))
            areas.append(area)
    points = np.array(xy)
    metres = np.rint(np.hypot(*(points[:, None, :] - points[None, :, :]).transpose(2, 0, 1)))
    metres = metres.astype(np.int64)
    seconds = metres // 5  # 18 km/h
    jobs = tuple(
        Job(f"KH{n:03d}", 2 + n, (8,), service_s=45, area=area) for n, area in enumerate(areas)
    )
    fleet = tuple(
        Vehicle(f"29C-{n}", (400,), 0, 0, TimeWindow(5 * 3600, 13 * 3600), dumps=(1,))
        for n in range(vehicles)
    )
    return Problem(
        name="areas",
        dimensions=("kg",),
        jobs=jobs,
        sites=(Site("depot", 0, SiteKind.DEPOT), Site("dump", 1, SiteKind.DUMP, service_s=600)),
        vehicles=fleet,
        matrix=TravelMatrix(seconds, metres),
    )


def test_whole_areas_go_to_the_least_booked_truck() -> None:
    problem = city({"VQ-01": 60, "VQ-02": 10, "VQ-03": 10, "VQ-04": 10})
    loads = {load.area: load for load in area_loads(problem, range(len(problem.jobs)))}
    assigned = assign_areas(problem, range(len(problem.jobs)))
    area_of = {n: job.area for n, job in enumerate(problem.jobs)}
    areas_per_truck = {v: {area_of[j] for j in jobs} for v, jobs in assigned.items()}
    # the big area alone on one truck, the three small ones together on the other
    assert sorted(sorted(a) for a in areas_per_truck.values()) == [
        ["VQ-01"],
        ["VQ-02", "VQ-03", "VQ-04"],
    ]
    assert loads["VQ-01"].work_s > loads["VQ-02"].work_s


def test_planning_by_area_keeps_areas_whole_and_every_rule() -> None:
    problem = city({"VQ-01": 12, "VQ-02": 12, "VQ-03": 12, "VQ-04": 12})
    solution = solve_by_area(problem, PyVrpEngine(), SolveOptions(time_limit_s=2.0))
    assert check(problem, solution) == []
    assert solution.unserved == ()
    seen: dict[str, int] = {}
    for route in solution.routes:
        for visit in route.visits:
            if visit.kind is VisitKind.JOB:
                area = problem.jobs[visit.index].area
                assert seen.setdefault(area, route.vehicle) == route.vehicle
    assert len(seen) == 4
    hours = [(r.end_s - r.start_s) / 3600 for r in solution.routes]
    assert len(hours) == 2
    assert max(hours) - min(hours) < 0.5 * max(hours)  # balanced: two areas each


def test_a_balanced_plan_spreads_the_day_over_the_trucks() -> None:
    # one crowded area and three small ones: the cheapest plan sends one truck everywhere
    problem = city({"VQ-01": 40, "VQ-02": 4, "VQ-03": 4, "VQ-04": 4}, vehicles=3)
    problem = dataclasses.replace(problem, objective=Objective(per_m=1, per_vehicle=0))
    options = SolveOptions(time_limit_s=3.0)
    cheapest = PyVrpEngine().solve(problem, options)
    balanced = solve_balanced(problem, PyVrpEngine(), options)
    assert check(problem, balanced) == []
    assert balanced.unserved == ()
    work = sum(r.end_s - r.start_s for r in cheapest.routes)
    longest = max(r.end_s - r.start_s for r in cheapest.routes)
    assert longest > 1.3 * work / 3  # lopsided: the cheapest plan leaves trucks idle
    days = [r.end_s - r.start_s for r in balanced.routes]
    assert len(days) == 3
    # capped near the work per truck (1.15 times it, loosened by 1.25 per try if needed)
    assert max(days) < longest
    assert max(days) <= 1.15 * 1.25**2 * work / 3
