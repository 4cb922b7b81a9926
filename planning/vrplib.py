"""VRPLIB benchmark instances as a ``planning.problem.Problem``, with their best-known solutions.

Three variants are read: ``cvrp`` (Uchoa et al.'s X set), ``vrptw`` (Gehring and Homberger's
1,000-customer set) and ``mtvrptwr`` (multi-trip VRPTW with release dates, Yang 2023). Node 0
is the depot: one site of kind ``DEPOT_DUMP`` where every truck starts, ends and, when the
instance has a VEHICLES_RELOAD_DEPOT_SECTION, reloads mid-route. Node k >= 1 is job k - 1,
keyed ``str(k)`` as the .sol files number it. The objective is distance only.

Coordinates are EUC_2D; travel time equals distance. Which rounding the literature used was
found by costing each .sol's routes under the candidate conventions and keeping the one
that gives the stated ``Cost`` exactly (all 12 instances of /work/shared/bench/vrp):

- ``cvrp``: TSPLIB ``nint``, floor(d + 0.5), scale 1. X-n101-k25's routes cost 27,591 as
  stated (exact 27,598.40, truncated 27,546, DIMACS 27,593.1); the same holds on all six.
- ``vrptw`` and ``mtvrptwr``: DIMACS, floor(10 d), scale 10. Every time figure (windows,
  service, release dates) is multiplied by 10 too, so times and distances stay one unit.
  C1_10_1's routes cost 424,448 tenths, the stated 42,444.8 (nint 42,396, exact 42,479.08);
  R1_10_1 and RC1_10_1 match to the tenth as well. The mtvrptwr .sol states its cost in the
  scaled unit: C202R0.5's routes cost 15,473 tenths and the file says ``Cost: 15473``
  (nint 1,548, exact 1,550.80); R202R0.5 and RC202R0.5 match the same way.

The problem's matrix and times are in the scaled unit (what engines see); costs for people
are divided by ``BenchInstance.scale`` (``in_instance_units``).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import vrplib

from planning.errors import InvalidValue
from planning.problem import (
    Job,
    Objective,
    Problem,
    Site,
    SiteKind,
    Solution,
    TimeWindow,
    TravelMatrix,
    Vehicle,
    VisitKind,
    solution_cost,
)
from planning.schedule import Step, timed_route

Variant = Literal["cvrp", "vrptw", "mtvrptwr"]

DEPOT_SITE = 0  # the one site: node 0, where trucks start, end and unload


class Rounding(enum.StrEnum):
    NINT = "nint"  # TSPLIB: nearest integer
    DIMACS = "dimacs"  # times 10, truncated (DIMACS 2021 challenge)

    @property
    def scale(self) -> int:
        return 10 if self is Rounding.DIMACS else 1


ROUNDING: dict[Variant, Rounding] = {
    "cvrp": Rounding.NINT,
    "vrptw": Rounding.DIMACS,
    "mtvrptwr": Rounding.DIMACS,
}
# Variants whose .sol states the cost in the scaled unit rather than the instance's own.
_SOL_COST_SCALED: frozenset[Variant] = frozenset({"mtvrptwr"})


@dataclass(frozen=True, slots=True)
class BenchInstance:
    path: Path
    variant: Variant
    rounding: Rounding
    problem: Problem
    best_known_cost: float | None  # in the instance's unit (divided by the scale)
    # Node numbers per route as the .sol lists them; 0 inside a route is a reload at the depot.
    best_known_routes: tuple[tuple[int, ...], ...] | None

    @property
    def name(self) -> str:
        return self.problem.name

    @property
    def scale(self) -> int:
        return self.rounding.scale

    @property
    def customers(self) -> int:
        return len(self.problem.jobs)

    def in_instance_units(self, cost: int) -> float:
        return cost / self.scale

    def gap_pct(self, cost: int) -> float | None:
        """How far ``cost`` (scaled, as ``solution_cost`` gives it) is above the best known."""
        if not self.best_known_cost:
            return None
        return 100 * (self.in_instance_units(cost) - self.best_known_cost) / self.best_known_cost


def read_instance(path: Path, rounding: Rounding | None = None) -> BenchInstance:
    """The instance at ``path`` and the best-known solution in the .sol beside it, if any.

    ``rounding`` defaults to the variant's convention (see the module docstring)."""
    data: dict[str, Any] = vrplib.read_instance(path, compute_edge_weights=False)
    variant = _variant(path, data)
    rounding = rounding or ROUNDING[variant]
    problem = _problem(data, rounding)
    best_cost: float | None = None
    best_routes: tuple[tuple[int, ...], ...] | None = None
    solution_path = path.with_suffix(".sol")
    if solution_path.exists():
        solution: dict[str, Any] = vrplib.read_solution(solution_path)
        if "cost" in solution:
            best_cost = float(solution["cost"])
            if variant in _SOL_COST_SCALED:
                best_cost /= rounding.scale
        best_routes = tuple(tuple(int(node) for node in route) for route in solution["routes"])
    return BenchInstance(path, variant, rounding, problem, best_cost, best_routes)


def node_steps(nodes: Sequence[int]) -> list[Step]:
    """A route as VRPLIB numbers it (customers 1..n, 0 = back to the depot to unload) as the
    steps ``planning.schedule.timed_route`` drives."""
    return [
        (VisitKind.DUMP, DEPOT_SITE) if node == 0 else (VisitKind.JOB, node - 1) for node in nodes
    ]


def best_known_solution(instance: BenchInstance) -> Solution | None:
    """The .sol's routes, timed by ``planning.schedule`` on vehicles 0, 1, ... in order."""
    if instance.best_known_routes is None:
        return None
    problem = instance.problem
    node_routes = [nodes for nodes in instance.best_known_routes if nodes]
    if len(node_routes) > len(problem.vehicles):
        raise InvalidValue(
            f"{instance.path.with_suffix('.sol')}: {len(node_routes)} routes,"
            f" {len(problem.vehicles)} vehicles"
        )
    routes = tuple(
        timed_route(problem, vehicle, node_steps(nodes))
        for vehicle, nodes in enumerate(node_routes)
    )
    return Solution(routes, (), solution_cost(problem, routes), "best-known", 0.0)


def _variant(path: Path, data: dict[str, Any]) -> Variant:
    kind = str(data.get("type", "")).strip().lower()
    for variant in ROUNDING:
        if kind == variant:
            return variant
    raise InvalidValue(f"{path}: TYPE {kind!r} is not read here; {', '.join(ROUNDING)} are")


def _problem(data: dict[str, Any], rounding: Rounding) -> Problem:
    name = str(data["name"])
    size = int(data["dimension"])
    if "node_coord" not in data or str(data.get("edge_weight_type")) != "EUC_2D":
        raise InvalidValue(f"{name}: EDGE_WEIGHT_TYPE must be EUC_2D with NODE_COORD_SECTION")
    depots = np.atleast_1d(data.get("depot", np.array([0])))
    if depots.tolist() != [0]:
        raise InvalidValue(f"{name}: DEPOT_SECTION {depots.tolist()}, only node 1 is read")
    scale = rounding.scale
    travel = _euclidean(np.asarray(data["node_coord"], dtype=np.float64), rounding)
    demand = np.asarray(data["demand"], dtype=np.int64)
    service = _service_times(data.get("service_time", 0), size, scale)
    windows = None
    if "time_window" in data:
        windows = _scaled(data["time_window"], scale)
    release = _scaled(data.get("release_time", np.zeros(size)), scale)
    # A job is a collection (pickup) in our model while CVRP's demand is a delivery; with one
    # depot and one commodity the two are the same problem: the route's load, read backwards.
    jobs = tuple(
        Job(
            key=str(node),
            location=node,
            demand=(int(demand[node]),),
            service_s=int(service[node]),
            window=None if windows is None else TimeWindow(*map(int, windows[node])),
            release_s=int(release[node]),
        )
        for node in range(1, size)
    )
    if windows is None:
        # No shift in the file: long enough for any route (every leg at most the longest).
        shift = TimeWindow(0, size * int(travel.max()) + int(service.sum()))
    else:
        shift = TimeWindow(*map(int, windows[0]))
    depot = Site("depot", 0, SiteKind.DEPOT_DUMP, window=None if windows is None else shift)
    # X instances have no VEHICLES line: the fleet is unbounded, as the literature has it.
    fleet = int(data.get("vehicles", size - 1))
    reloads = _reloads(data, fleet)
    capacity = (int(data["capacity"]),)
    vehicles = tuple(
        Vehicle(
            key=f"v{number + 1}",
            capacity=capacity,
            start_site=DEPOT_SITE,
            end_site=DEPOT_SITE,
            shift=shift,
            dumps=(DEPOT_SITE,) if reloads[number] else (),
        )
        for number in range(fleet)
    )
    travel.flags.writeable = False  # shared by durations and distances
    return Problem(
        name=name,
        dimensions=("units",),
        jobs=jobs,
        sites=(depot,),
        vehicles=vehicles,
        matrix=TravelMatrix(durations_s=travel, distances_m=travel),
        objective=Objective(per_m=1),
    )


def _euclidean(coords: npt.NDArray[np.float64], rounding: Rounding) -> npt.NDArray[np.int64]:
    delta = coords[:, None, :] - coords[None, :, :]
    squared: npt.NDArray[np.float64] = (delta**2).sum(axis=2)
    if rounding is Rounding.NINT:
        return np.floor(np.sqrt(squared) + 0.5).astype(np.int64)
    # sqrt(100 d^2) rather than 10 sqrt(d^2): exact whenever 10 d is a whole number.
    return np.floor(np.sqrt(squared * rounding.scale**2)).astype(np.int64)


def _scaled(values: Any, scale: int) -> npt.NDArray[np.int64]:
    return np.floor(np.asarray(values, dtype=np.float64) * scale).astype(np.int64)


def _service_times(value: Any, size: int, scale: int) -> npt.NDArray[np.int64]:
    service = np.asarray(value, dtype=np.float64)
    if service.ndim == 0:  # one figure for every customer; the depot's is 0
        service = np.full(size, float(service))
        service[0] = 0.0
    return _scaled(service, scale)


def _reloads(data: dict[str, Any], fleet: int) -> list[bool]:
    """Whether each vehicle may go back to the depot (node 1) to unload mid-route."""
    if "vehicles_reload_depot" not in data:
        return [False] * fleet
    listed = np.asarray(data["vehicles_reload_depot"])
    if listed.ndim == 1:
        listed = listed[:, None]
    if len(listed) != fleet:
        raise InvalidValue(f"VEHICLES_RELOAD_DEPOT_SECTION: {len(listed)} rows, {fleet} vehicles")
    return [bool((row == 1).any()) for row in listed]
