"""The engines ``bench.planning`` compares: one run is one engine on one instance within one
time limit, in a worker process of its own.

Every engine's answer becomes a ``planning.problem.Solution`` (PyVRP's and VROOM's stop
sequences are timed by ``planning.schedule``), is judged by ``planning.feasibility.check``
and costed from our matrix, so that every engine is compared on the same figure.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import planning.errors
from planning.engine import SolveOptions
from planning.feasibility import check
from planning.problem import Solution, Unserved, UnservedReason, VisitKind, solution_cost
from planning.schedule import Step, timed_route
from planning.vrplib import DEPOT_SITE, BenchInstance, Rounding, read_instance

ENGINES = ("sanitrack-pyvrp", "sanitrack-ortools", "pyvrp", "vroom")
_PYVRP_ROUNDING = {Rounding.NINT: "round", Rounding.DIMACS: "dimacs"}


class NotAvailable(Exception):
    """The engine cannot run this instance; the message says why."""


@dataclass(frozen=True, slots=True)
class Run:
    number: int  # 1-based, for progress lines
    total: int
    path: Path
    instance: str
    variant: str
    customers: int
    limit_s: float
    engine: str

    @property
    def label(self) -> str:
        return f"[{self.number:>3}/{self.total}]"


@dataclass(frozen=True, slots=True)
class Outcome:
    run: Run
    scale: int
    cost: int | None  # scaled, from our matrix; None when the engine gave no plan
    gap_pct: float | None
    vehicles: int | None
    feasible: bool
    verdict: str  # "yes", the first violation, "n/a (why)" or "error: ..."
    wall_s: float

    @property
    def cost_text(self) -> str:
        if self.cost is None:
            return "-"
        return f"{self.cost / self.scale:,.{1 if self.scale > 1 else 0}f}"

    @property
    def gap_text(self) -> str:
        return "-" if self.gap_pct is None else f"{self.gap_pct:.2f}"


def execute(run: Run) -> Outcome:
    """One run, start to verdict; never raises (a failing engine is a row of the table)."""
    # One write per line: runs in parallel processes share the terminal.
    sys.stdout.write(
        f"{run.label} start {run.instance} ({run.variant}, {run.customers} customers),"
        f" {run.limit_s:g} s, {run.engine}\n"
    )
    sys.stdout.flush()
    instance = read_instance(run.path)
    began = time.monotonic()
    try:
        solution = _SOLVERS[run.engine](instance, run.limit_s)
    except NotAvailable as exc:
        return Outcome(run, instance.scale, None, None, None, False, f"n/a ({exc})", 0.0)
    except Exception as exc:  # a failing engine is a row of the table; the bench goes on
        wall_s = time.monotonic() - began
        return Outcome(run, instance.scale, None, None, None, False, f"error: {exc!r}", wall_s)
    return _judge(run, instance, solution)


def _judge(run: Run, instance: BenchInstance, solution: Solution) -> Outcome:
    problem = instance.problem
    cost = solution_cost(problem, solution.routes)
    violations = check(problem, solution)
    if violations:
        more = f" (+{len(violations) - 1} more)" if len(violations) > 1 else ""
        verdict = f"{violations[0]}{more}"
    elif solution.unserved:
        verdict = f"{len(solution.unserved)} jobs unserved"
    else:
        verdict = "yes"
    return Outcome(
        run,
        instance.scale,
        cost,
        instance.gap_pct(cost),
        len(solution.routes),
        verdict == "yes",
        verdict,
        solution.runtime_s,
    )


def _sanitrack(module_name: str, class_name: str) -> Callable[[BenchInstance, float], Solution]:
    def solve(instance: BenchInstance, limit_s: float) -> Solution:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            raise NotAvailable(f"{module_name} is not there yet") from exc
        options: dict[str, Any] = {"time_limit_s": limit_s}
        if "allow_unserved" in {field.name for field in dataclasses.fields(SolveOptions)}:
            options["allow_unserved"] = False
        unsupported = getattr(planning.errors, "Unsupported", None)
        began = time.monotonic()
        try:
            solution: Solution = getattr(module, class_name)().solve(
                instance.problem, SolveOptions(**options)
            )
        except Exception as exc:
            if unsupported is not None and isinstance(exc, unsupported):
                raise NotAvailable(str(exc)) from exc
            raise
        return dataclasses.replace(solution, runtime_s=time.monotonic() - began)

    return solve


def _pyvrp(instance: BenchInstance, limit_s: float) -> Solution:
    import pyvrp
    from pyvrp.stop import MaxRuntime

    data = pyvrp.read(instance.path, round_func=_PYVRP_ROUNDING[instance.rounding])
    began = time.monotonic()
    result = pyvrp.solve(data, stop=MaxRuntime(limit_s), seed=0, display=False)
    runtime_s = time.monotonic() - began
    # PyVRP numbers clients from 0 after the one depot: client i is node i + 1, our job i.
    sequences = [
        [
            (VisitKind.DUMP, DEPOT_SITE) if activity.is_depot() else (VisitKind.JOB, activity.idx)
            for activity in list(route)[1:-1]  # inner depot visits are reloads
        ]
        for route in result.best.routes()
    ]
    return _solution(instance, sequences, "pyvrp", runtime_s)


def _vroom(instance: BenchInstance, limit_s: float) -> Solution:
    import vroom

    problem = instance.problem
    if any(vehicle.dumps for vehicle in problem.vehicles):
        raise NotAvailable("no multi-trip")
    if any(job.release_s for job in problem.jobs):
        raise NotAvailable("no release dates")
    vroom_input = vroom.Input()
    # Our scaled matrix, so that VROOM's figures are in the same unit as everyone's.
    vroom_input.set_durations_matrix(profile="car", matrix_input=problem.matrix.durations_s)
    vroom_input.set_distances_matrix(profile="car", matrix_input=problem.matrix.distances_m)
    for number, vehicle in enumerate(problem.vehicles):
        vroom_input.add_vehicle(
            vroom.Vehicle(
                id=number,
                start=problem.sites[vehicle.start_site].location,
                end=problem.sites[vehicle.end_site].location,
                capacity=list(vehicle.capacity),
                time_window=vroom.TimeWindow(vehicle.shift.start_s, vehicle.shift.end_s),
            )
        )
    for number, job in enumerate(problem.jobs):
        windows = (
            [] if job.window is None else [vroom.TimeWindow(job.window.start_s, job.window.end_s)]
        )
        vroom_input.add_job(
            vroom.Job(
                id=number,
                location=job.location,
                default_service=job.service_s,
                pickup=vroom.Amount(list(job.demand)),  # collection, as in our model
                time_windows=windows,
            )
        )
    began = time.monotonic()
    answer = vroom_input.solve(
        exploration_level=5, nb_threads=1, timeout=timedelta(seconds=limit_s)
    )
    runtime_s = time.monotonic() - began
    steps = answer.routes
    jobs = steps[steps["type"] == "job"]
    sequences = [
        [(VisitKind.JOB, int(job)) for job in group["id"]]
        for _, group in jobs.groupby("vehicle_id", sort=True)
    ]
    return _solution(instance, sequences, "vroom", runtime_s)


def _solution(
    instance: BenchInstance, sequences: Sequence[Sequence[Step]], engine: str, runtime_s: float
) -> Solution:
    """Stop sequences, one per vehicle used, as our timed routes on vehicles 0, 1, ..."""
    problem = instance.problem
    routes = tuple(
        timed_route(problem, vehicle, steps)
        for vehicle, steps in enumerate(steps for steps in sequences if steps)
    )
    served = {index for steps in sequences for kind, index in steps if kind is VisitKind.JOB}
    unserved = tuple(
        Unserved(job, UnservedReason.NO_VEHICLE_LEFT, f"{engine} left it out")
        for job in range(len(problem.jobs))
        if job not in served
    )
    return Solution(routes, unserved, solution_cost(problem, routes), engine, runtime_s)


_SOLVERS: dict[str, Callable[[BenchInstance, float], Solution]] = {
    "sanitrack-pyvrp": _sanitrack("planning.engine_pyvrp", "PyVrpEngine"),
    "sanitrack-ortools": _sanitrack("planning.engine_ortools", "OrToolsEngine"),
    "pyvrp": _pyvrp,
    "vroom": _vroom,
}
