"""The solver engine interface: a problem and a time limit in, a solution out.

Engines (``planning.engine_pyvrp``, ``planning.engine_ortools``) only order stops; times
come from ``planning.schedule`` and jobs no vehicle can serve at all are found beforehand
by ``planning.diagnosis``, so that an engine never fails on them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from planning.problem import Problem, Solution

# (seconds elapsed, best cost so far or None before the first feasible solution)
Progress = Callable[[float, int | None], None]


@dataclass(frozen=True, slots=True)
class SolveOptions:
    time_limit_s: float
    seed: int = 0
    progress: Progress | None = None
    # Jobs the engine must leave out (known unservable); their indexes into Problem.jobs.
    skip_jobs: frozenset[int] = frozenset()
    # When True jobs get a large prize and are optional, so an undersized fleet leaves some
    # out (reported unserved) instead of returning an infeasible plan; the benchmark sets False.
    allow_unserved: bool = True


class Engine(Protocol):
    name: str

    def solve(self, problem: Problem, options: SolveOptions) -> Solution: ...
