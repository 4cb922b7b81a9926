"""Both engines find the optimum of small instances, known by trying every plan (brute
force, judged by the feasibility checker): capacities and time windows, two trucks."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from planning.engine import Engine, SolveOptions
from planning.engine_ortools import OrToolsEngine
from planning.engine_pyvrp import PyVrpEngine
from planning.feasibility import check
from planning.problem import (
    Job,
    Problem,
    Route,
    Site,
    SiteKind,
    Solution,
    TimeWindow,
    TravelMatrix,
    Vehicle,
    VisitKind,
    solution_cost,
)
from planning.schedule import timed_route

JOBS = 6


def instance(seed: int) -> Problem:
    rng = random.Random(seed)
    xy = np.array(
        [(500, 500)] + [(rng.randint(0, 1000), rng.randint(0, 1000)) for _ in range(JOBS)]
    )
    matrix = np.rint(np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1)))
    matrix = matrix.astype(np.int64)
    jobs = []
    for n in range(JOBS):
        window = None
        if rng.random() < 0.4:  # a shop open for a while somewhere in the day
            opens = rng.randint(0, 2500)
            window = TimeWindow(opens, opens + rng.randint(400, 1500))
        jobs.append(Job(f"P{n}", 1 + n, (rng.randint(1, 6),), service_s=30, window=window))
    vehicle = Vehicle("xe", capacity=(20,), start_site=0, end_site=0, shift=TimeWindow(0, 6000))
    return Problem(
        name=f"small-{seed}",
        dimensions=("kg",),
        jobs=tuple(jobs),
        sites=(Site("depot", 0, SiteKind.DEPOT_DUMP),),
        vehicles=(vehicle, Vehicle("xe2", (20,), 0, 0, TimeWindow(0, 6000))),
        matrix=TravelMatrix(matrix, matrix.copy()),
    )


def brute_force(problem: Problem) -> int:
    best: int | None = None
    for order in itertools.permutations(range(JOBS)):
        for cut in range(JOBS + 1):
            routes: list[Route] = []
            for vehicle, part in enumerate((order[:cut], order[cut:])):
                if part:
                    routes.append(timed_route(problem, vehicle, [(VisitKind.JOB, j) for j in part]))
            cost = solution_cost(problem, routes)
            if best is not None and cost >= best:
                continue
            if not check(problem, Solution(tuple(routes), (), cost, "brute", 0.0)):
                best = cost
    assert best is not None, "the instance has no feasible plan"
    return best


@pytest.mark.parametrize("engine", [PyVrpEngine(), OrToolsEngine()], ids=lambda e: e.name)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_engine_finds_the_optimum_of_a_small_instance(engine: Engine, seed: int) -> None:
    problem = instance(seed)
    solution = engine.solve(problem, SolveOptions(time_limit_s=1.0, allow_unserved=False))
    assert check(problem, solution) == []
    assert solution.unserved == ()
    assert solution.cost == brute_force(problem)
