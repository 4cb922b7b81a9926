"""The feasibility checker catches every broken rule of planning.problem, and passes plans
that keep them (any timing, not only our scheduler's)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from planning.feasibility import check
from planning.problem import (
    Break,
    Job,
    Problem,
    Route,
    Site,
    SiteKind,
    Solution,
    TimeWindow,
    Unserved,
    UnservedReason,
    Vehicle,
    Visit,
    VisitKind,
    solution_cost,
)
from planning.schedule import Step, timed_route

# A line of places 100 s / 100 m apart: 0 depot (garage), 1 dump, 2..5 four stops.
N = 6
POSITIONS = np.arange(N, dtype=np.int64) * 100
LINE = np.abs(POSITIONS[:, None] - POSITIONS[None, :])


def problem(**vehicle_changes: object) -> Problem:
    from planning.problem import TravelMatrix

    vehicle = Vehicle(
        key="29C-00001",
        capacity=(20,),
        start_site=0,
        end_site=0,
        shift=TimeWindow(0, 5000),
        dumps=(1,),
    )
    return Problem(
        name="line",
        dimensions=("kg",),
        jobs=tuple(Job(f"P{n}", location=n, demand=(10,), service_s=30) for n in range(2, N)),
        sites=(Site("garage", 0, SiteKind.DEPOT), Site("dump", 1, SiteKind.DUMP, service_s=60)),
        vehicles=(dataclasses.replace(vehicle, **vehicle_changes),),  # type: ignore[arg-type]
        matrix=TravelMatrix(LINE.copy(), LINE.copy()),
    )


GOOD: list[Step] = [
    (VisitKind.JOB, 0),
    (VisitKind.JOB, 1),
    (VisitKind.DUMP, 1),
    (VisitKind.JOB, 2),
    (VisitKind.JOB, 3),
    (VisitKind.DUMP, 1),
]


def solution(p: Problem, steps: list[Step], unserved: tuple[Unserved, ...] = ()) -> Solution:
    route = timed_route(p, 0, steps)
    return Solution((route,), unserved, solution_cost(p, [route]), "test", 0.0)


def test_a_plan_that_keeps_every_rule_passes() -> None:
    p = problem()
    assert check(p, solution(p, GOOD)) == []


def test_any_timing_that_keeps_the_rules_passes() -> None:
    p = problem()
    route = timed_route(p, 0, GOOD)
    # leave 100 s later and wait 10 s more at every visit: still feasible
    later = Route(
        0,
        route.start_s + 100,
        tuple(
            Visit(
                v.kind,
                v.index,
                v.arrival_s + 100 + 10 * n,
                v.start_s + 100 + 10 * n,
                v.departure_s + 100 + 10 * n,
            )
            for n, v in enumerate(route.visits, start=1)
        ),
        route.end_s + 100 + 10 * len(route.visits),
        route.distance_m,
        route.duration_s + 10 * len(route.visits),
    )
    assert check(p, Solution((later,), (), solution_cost(p, [later]), "test", 0.0)) == []


@pytest.mark.parametrize(
    ("steps", "changes", "rule"),
    [
        # three stops of 10 kg in one trip of a 20 kg truck
        (
            [
                (VisitKind.JOB, 0),
                (VisitKind.JOB, 1),
                (VisitKind.JOB, 2),
                (VisitKind.DUMP, 1),
                (VisitKind.JOB, 3),
                (VisitKind.DUMP, 1),
            ],
            {},
            "capacity",
        ),
        # home from the last stop without emptying at the dump
        (GOOD[:-1], {}, "unload"),
        # a stop served twice (and one never)
        (
            [(VisitKind.JOB, 0), (VisitKind.JOB, 0), (VisitKind.DUMP, 1)],
            {"capacity": (99,)},
            "served_once",
        ),
        (GOOD, {"shift": TimeWindow(0, 900)}, "shift"),
        (GOOD, {"max_duration_s": 900}, "duration"),
        (GOOD, {"max_trips": 1}, "trips"),
        (GOOD, {"dumps": ()}, "dump"),
        (GOOD, {"initial_load": (15,)}, "capacity"),
    ],
)
def test_each_broken_rule_is_named(
    steps: list[Step], changes: dict[str, object], rule: str
) -> None:
    p = problem(**changes)
    found = check(p, solution(p, steps))
    assert rule in {v.rule for v in found}, [str(v) for v in found]


def test_a_stop_outside_its_window_is_caught() -> None:
    p = problem()
    jobs = list(p.jobs)
    jobs[3] = dataclasses.replace(jobs[3], window=TimeWindow(0, 100))  # long before it is reached
    p = dataclasses.replace(p, jobs=tuple(jobs))
    found = check(p, solution(p, GOOD))
    assert [v.rule for v in found] == ["window"]
    assert "P5" in str(found[0])


def test_a_trip_may_not_leave_before_its_stops_are_released() -> None:
    p = problem()
    jobs = list(p.jobs)
    jobs[2] = dataclasses.replace(jobs[2], release_s=3000)
    p = dataclasses.replace(p, jobs=tuple(jobs))
    planned = solution(p, GOOD)  # the scheduler waits at the dump for the release
    assert check(p, planned) == []
    route = planned.routes[0]
    # the same order timed as if there were no release
    rushed = timed_route(dataclasses.replace(p, jobs=problem().jobs), 0, GOOD)
    assert rushed.visits[2].departure_s < 3000 <= route.visits[2].departure_s
    found = check(p, Solution((rushed,), (), solution_cost(p, [rushed]), "test", 0.0))
    assert "release" in {v.rule for v in found}


def test_claimed_times_faster_than_the_matrix_are_caught() -> None:
    p = problem()
    route = timed_route(p, 0, GOOD)
    first = route.visits[0]
    quick = dataclasses.replace(first, arrival_s=first.arrival_s - 50, start_s=first.start_s - 50)
    broken = dataclasses.replace(route, visits=(quick, *route.visits[1:]))
    found = check(p, Solution((broken,), (), solution_cost(p, [broken]), "test", 0.0))
    assert "time" in {v.rule for v in found}


def test_a_wrong_cost_or_distance_is_caught() -> None:
    p = problem()
    planned = solution(p, GOOD)
    assert "cost" in {v.rule for v in check(p, dataclasses.replace(planned, cost=1))}
    route = dataclasses.replace(planned.routes[0], distance_m=1)
    assert "distance" in {v.rule for v in check(p, dataclasses.replace(planned, routes=(route,)))}


def test_a_break_is_taken_in_its_window_once() -> None:
    p = problem(break_=Break(TimeWindow(300, 400), 120))
    planned = solution(p, GOOD)
    breaks = [v for v in planned.routes[0].visits if v.kind is VisitKind.BREAK]
    assert len(breaks) == 1
    assert 300 <= breaks[0].start_s <= 400
    assert check(p, planned) == []
    without = dataclasses.replace(
        planned.routes[0],
        visits=tuple(v for v in planned.routes[0].visits if v.kind is not VisitKind.BREAK),
    )
    found = check(p, dataclasses.replace(planned, routes=(without,)))
    assert "break" in {v.rule for v in found}


def test_unserved_stops_count_once_and_only_once() -> None:
    p = problem()
    reported = (Unserved(3, UnservedReason.NO_VEHICLE_LEFT, ""),)
    short: list[Step] = [*GOOD[:3], (VisitKind.JOB, 2), (VisitKind.DUMP, 1)]
    assert check(p, solution(p, short, reported)) == []
    twice = (*reported, Unserved(3, UnservedReason.NO_VEHICLE_LEFT, ""))
    found = check(p, solution(p, short, twice))
    assert {v.rule for v in found} == {"served_once"}
