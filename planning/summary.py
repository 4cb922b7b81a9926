"""The figures a dispatcher reads off a plan: what `sanitrack plan` prints and the page shows."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from planning.problem import Problem, Solution, VisitKind


@dataclass(frozen=True, slots=True)
class RouteLine:
    vehicle: str
    stops: int
    trips: int
    distance_m: int
    start_s: int
    end_s: int
    load: tuple[int, ...]  # collected over the day, per dimension


@dataclass(frozen=True, slots=True)
class PlanSummary:
    engine: str
    runtime_s: float
    cost: int
    vehicles_available: int
    vehicles_used: int
    stops: int
    served: int
    distance_m: int
    duration_s: int
    unserved: dict[str, int]  # reason -> stops
    routes: tuple[RouteLine, ...]

    @property
    def longest_s(self) -> int:
        return max((r.end_s - r.start_s for r in self.routes), default=0)

    @property
    def shortest_s(self) -> int:
        return min((r.end_s - r.start_s for r in self.routes), default=0)

    def as_json(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "runtime_s": round(self.runtime_s, 2),
            "cost": self.cost,
            "vehicles_available": self.vehicles_available,
            "vehicles_used": self.vehicles_used,
            "stops": self.stops,
            "served": self.served,
            "distance_m": self.distance_m,
            "duration_s": self.duration_s,
            "longest_s": self.longest_s,
            "shortest_s": self.shortest_s,
            "unserved": self.unserved,
            "routes": [
                {
                    "vehicle": r.vehicle,
                    "stops": r.stops,
                    "trips": r.trips,
                    "distance_m": r.distance_m,
                    "start_s": r.start_s,
                    "end_s": r.end_s,
                    "load": list(r.load),
                }
                for r in self.routes
            ],
        }

    def table(self, dimensions: tuple[str, ...] = ("kg",)) -> str:
        """The summary as a fixed-width table for the terminal."""
        lines = [
            f"{'vehicle':<12} {'stops':>5} {'trips':>5} {'km':>7} {'start':>6} {'end':>6}"
            f" {'hours':>6} {'load':>14}"
        ]
        for r in self.routes:
            load = "/".join(
                f"{amount}{unit}" for amount, unit in zip(r.load, dimensions, strict=False)
            )
            lines.append(
                f"{r.vehicle:<12} {r.stops:>5} {r.trips:>5} {r.distance_m / 1000:>7.1f}"
                f" {_clock(r.start_s):>6} {_clock(r.end_s):>6} {(r.end_s - r.start_s) / 3600:>6.2f}"
                f" {load:>14}"
            )
        unserved = ", ".join(f"{n} {reason}" for reason, n in sorted(self.unserved.items()))
        lines += [
            "",
            f"vehicles used  {self.vehicles_used} of {self.vehicles_available}",
            f"stops served   {self.served} of {self.stops}",
            f"distance       {self.distance_m / 1000:.1f} km",
            f"duration       {self.duration_s / 3600:.1f} h (longest {self.longest_s / 3600:.2f} h,"
            f" shortest {self.shortest_s / 3600:.2f} h)",
            f"unserved       {sum(self.unserved.values())}"
            + (f" ({unserved})" if unserved else ""),
            f"engine         {self.engine}, {self.runtime_s:.1f} s",
        ]
        return "\n".join(lines)


def summarize(problem: Problem, solution: Solution) -> PlanSummary:
    routes = []
    for route in solution.routes:
        load = [0] * len(problem.dimensions)
        stops = dumps = 0
        for visit in route.visits:
            if visit.kind is VisitKind.JOB:
                stops += 1
                for d, amount in enumerate(problem.jobs[visit.index].demand):
                    load[d] += amount
            elif visit.kind is VisitKind.DUMP:
                dumps += 1
        vehicle = problem.vehicles[route.vehicle]
        trips = dumps + (1 if problem.sites[vehicle.end_site].unloads else 0)
        routes.append(
            RouteLine(
                vehicle.key, stops, trips, route.distance_m, route.start_s, route.end_s, tuple(load)
            )
        )
    served = sum(r.stops for r in routes)
    return PlanSummary(
        engine=solution.engine,
        runtime_s=solution.runtime_s,
        cost=solution.cost,
        vehicles_available=len(problem.vehicles),
        vehicles_used=len(routes),
        stops=len(problem.jobs),
        served=served,
        distance_m=sum(r.distance_m for r in routes),
        duration_s=sum(r.end_s - r.start_s for r in routes),
        unserved=dict(Counter(str(u.reason) for u in solution.unserved)),
        routes=tuple(routes),
    )


def _clock(t_s: int) -> str:
    days, rest = divmod(t_s, 86_400)
    text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}"
    return text if days == 0 else f"{text}+{days}"
