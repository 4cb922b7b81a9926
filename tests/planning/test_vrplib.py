"""VRPLIB instances read into our problem model: counts, the rounding convention (the .sol's
routes cost what the .sol says) and the best-known plans passing our feasibility oracle."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import pyvrp

from planning.errors import InvalidValue
from planning.feasibility import check
from planning.problem import SiteKind, TimeWindow, VisitKind, solution_cost
from planning.schedule import timed_route
from planning.vrplib import (
    DEPOT_SITE,
    BenchInstance,
    Rounding,
    best_known_solution,
    node_steps,
    read_instance,
)

DATA = (Path(__file__).resolve().parents[2] / "../shared/bench/vrp").resolve()
if not DATA.is_dir():
    pytest.skip(f"no VRPLIB benchmark data: looked in {DATA}", allow_module_level=True)

# name: (variant, customers, vehicles, capacity, routes in the .sol, best-known cost)
EXPECTED = {
    "cvrp/X-n101-k25": ("cvrp", 100, 100, 206, 26, 27591.0),
    "cvrp/X-n120-k6": ("cvrp", 119, 119, 21, 6, 13332.0),
    "cvrp/X-n153-k22": ("cvrp", 152, 152, 144, 23, 21220.0),
    "cvrp/X-n200-k36": ("cvrp", 199, 199, 402, 36, 58578.0),
    "cvrp/X-n251-k28": ("cvrp", 250, 250, 69, 28, 38684.0),
    "cvrp/X-n303-k21": ("cvrp", 302, 302, 794, 21, 21736.0),
    "vrptw/C1_10_1": ("vrptw", 1000, 250, 200, 100, 42444.8),
    "vrptw/R1_10_1": ("vrptw", 1000, 250, 200, 95, 53026.1),
    "vrptw/RC1_10_1": ("vrptw", 1000, 250, 200, 90, 45790.7),
    "mtvrptwr/C202R0.5": ("mtvrptwr", 100, 8, 100, 8, 1547.3),
    "mtvrptwr/R202R0.5": ("mtvrptwr", 100, 8, 100, 8, 1413.8),
    "mtvrptwr/RC202R0.5": ("mtvrptwr", 100, 8, 100, 8, 1813.4),
}
ONE_PER_VARIANT = ["cvrp/X-n101-k25", "vrptw/RC1_10_1", "mtvrptwr/C202R0.5"]


@functools.cache
def _read(name: str) -> BenchInstance:
    return read_instance(DATA / f"{name}.vrp")


def test_every_instance_is_listed() -> None:
    found = {str(path.relative_to(DATA).with_suffix("")) for path in DATA.rglob("*.vrp")}
    assert found == set(EXPECTED)


@pytest.mark.parametrize("name", EXPECTED)
def test_counts(name: str) -> None:
    variant, customers, vehicles, capacity, routes, best = EXPECTED[name]
    instance = _read(name)
    problem = instance.problem
    assert (instance.variant, instance.customers, len(problem.vehicles)) == (
        variant,
        customers,
        vehicles,
    )
    assert problem.matrix.size == customers + 1
    assert problem.sites[DEPOT_SITE].kind is SiteKind.DEPOT_DUMP
    assert {vehicle.capacity for vehicle in problem.vehicles} == {(capacity,)}
    assert instance.best_known_routes is not None
    assert len(instance.best_known_routes) == routes
    assert instance.best_known_cost == pytest.approx(best)
    assert instance.scale == (1 if variant == "cvrp" else 10)
    assert all((job.window is None) == (variant == "cvrp") for job in problem.jobs)
    assert all(bool(vehicle.dumps) == (variant == "mtvrptwr") for vehicle in problem.vehicles)


@pytest.mark.parametrize("name", EXPECTED)
def test_best_known_routes_cost_the_stated_cost(name: str) -> None:
    instance = _read(name)
    solution = best_known_solution(instance)
    assert solution is not None
    assert instance.in_instance_units(solution.cost) == pytest.approx(instance.best_known_cost)
    assert instance.gap_pct(solution.cost) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("name", ONE_PER_VARIANT)
def test_the_other_rounding_misses_the_stated_cost(name: str) -> None:
    other = Rounding.DIMACS if _read(name).rounding is Rounding.NINT else Rounding.NINT
    instance = read_instance(DATA / f"{name}.vrp", rounding=other)
    solution = best_known_solution(instance)
    assert solution is not None
    assert instance.in_instance_units(solution.cost) != pytest.approx(_read(name).best_known_cost)


@pytest.mark.parametrize("name", EXPECTED)
def test_best_known_solution_is_feasible(name: str) -> None:
    instance = _read(name)
    solution = best_known_solution(instance)
    assert solution is not None
    assert [str(violation) for violation in check(instance.problem, solution)] == []


def test_times_are_scaled_with_distances() -> None:
    problem = _read("mtvrptwr/C202R0.5").problem
    first = problem.jobs[0]  # node 1: window 0-3272, release 1580, service 90 in the file
    assert first.key == "1"
    assert (first.window, first.release_s, first.service_s) == (TimeWindow(0, 32720), 15800, 900)
    assert problem.vehicles[0].shift == TimeWindow(0, 33900)
    # node 0 at (40, 50), node 1 at (52, 75): 27.73 -> 277 tenths, travel time the same
    assert problem.matrix.distances_m[0, 1] == problem.matrix.durations_s[0, 1] == 277


def test_a_reload_is_a_dump_visit_at_the_depot() -> None:
    instance = _read("mtvrptwr/C202R0.5")
    assert instance.best_known_routes is not None
    nodes = instance.best_known_routes[2]  # 67 63 0 62 ...
    steps = node_steps(nodes)
    assert steps[:3] == [(VisitKind.JOB, 66), (VisitKind.JOB, 62), (VisitKind.DUMP, DEPOT_SITE)]
    route = timed_route(instance.problem, 0, steps)
    assert sum(visit.kind is VisitKind.DUMP for visit in route.visits) == nodes.count(0)


@pytest.mark.parametrize(
    ("name", "round_func"),
    [("cvrp/X-n101-k25", "round"), ("vrptw/RC1_10_1", "dimacs"), ("mtvrptwr/C202R0.5", "dimacs")],
)
def test_pyvrp_reads_the_same_matrix(name: str, round_func: str) -> None:
    """The benchmark runs PyVRP on the file itself; this rounding gives it our matrix."""
    data = pyvrp.read(DATA / f"{name}.vrp", round_func=round_func)
    assert np.array_equal(data.distance_matrix(0), _read(name).problem.matrix.distances_m)


def test_a_missing_sol_leaves_the_best_known_empty(tmp_path: Path) -> None:
    path = tmp_path / "X-n101-k25.vrp"
    path.write_text((DATA / "cvrp/X-n101-k25.vrp").read_text())
    instance = read_instance(path)
    assert (instance.best_known_cost, instance.best_known_routes) == (None, None)
    assert best_known_solution(instance) is None
    assert instance.gap_pct(solution_cost(instance.problem, ())) is None


def test_another_type_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tiny.vrp"
    path.write_text(
        "NAME: tiny\nTYPE: TSP\nDIMENSION: 2\nEDGE_WEIGHT_TYPE: EUC_2D\n"
        "NODE_COORD_SECTION\n1 0 0\n2 3 4\nEOF\n"
    )
    with pytest.raises(InvalidValue, match="TYPE 'tsp'"):
        read_instance(path)
