"""The state of a route run's stops (which are served, watched, alerted), shared by the
rule that changes it (``rules.stops``) and the records it tells (``rules.stop_records``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from alerts import AlertKind, AlertSignal, StopVisit, VisitEvidence
from rules.stop_timing import TimingState
from tracker import TrackedRun

KIND = AlertKind.MISSED_STOP
PENDING, PROBABLE, VISITED, UNSEEN = 0, 1, 2, 3


@dataclass(slots=True)
class StopWatch:
    """The vehicle at one stop: standing there, or going through its radius."""

    first_t: float
    last_t: float
    stood: bool = False  # a stand whose mean position is within the stop's radius
    dwell_s: float = 0.0
    passing_fixes: int = 0  # moving fixes inside the (accuracy-widened) radius
    speed_sum_kmh: float = 0.0
    closest_m: float = math.inf
    lat: float = 0.0  # where the vehicle stood (the stand's mean), or its closest fix
    lon: float = 0.0
    fixes: int = 0
    in_turn: bool = False  # while route progress was at this stop, not on another leg
    matched: bool = False  # the stand's mean was at this stop at its last fix
    visited: VisitEvidence | None = None


@dataclass(slots=True)
class StopsState:
    """One route run's stops: which are served, which were passed or missed."""

    run: TrackedRun
    status: bytearray
    window_order: tuple[int, ...]  # indexes of windowed stops by window end
    alerted: dict[int, str] = field(default_factory=dict)  # index -> open alert key
    missed: set[int] = field(default_factory=set)  # missed for good
    watches: dict[int, StopWatch] = field(default_factory=dict)
    pass_cursor: int = 0  # stops before it are behind the progress
    near_passed: set[int] = field(default_factory=set)  # behind it, but the vehicle is near
    # The stops at the current stand, found where its mean was (found again when it moves).
    stand_hits: tuple[tuple[int, float], ...] = ()
    stand_anchor: tuple[float, float, float] = (math.nan, 0.0, 0.0)  # since, x, y
    window_cursor: int = 0
    closed: bool = False  # the run ended and its unserved stops are missed
    timing: TimingState = field(default_factory=TimingState)
    last_visited: int = -1  # the stop visited last (stood at, lifted, confirmed)
    # No fix for unseen_gap_s since that visit, and the truck came back standing still
    # (progress may be stuck behind it) ...
    dropout: bool = False
    dropout_cursor: int = 0  # ... when progress had passed the stops before this one

    @classmethod
    def of(cls, run: TrackedRun) -> StopsState:
        windowed = [i for i, s in enumerate(run.stops) if s.window_end_s is not None and s.collect]
        order = tuple(sorted(windowed, key=lambda i: run.stops[i].window_end_s or 0.0))
        return cls(run, bytearray(len(run.stops)), order)

    def clone(self) -> StopsState:
        copy = replace(self)
        copy.status = bytearray(self.status)
        copy.alerted = dict(self.alerted)
        copy.missed = set(self.missed)
        copy.near_passed = set(self.near_passed)
        copy.watches = {k: replace(w) for k, w in self.watches.items()}
        copy.timing = self.timing.clone()
        return copy


@dataclass(slots=True)
class Outcome:
    signals: list[AlertSignal] = field(default_factory=list)
    visits: list[StopVisit] = field(default_factory=list)

    def extend(self, other: Outcome) -> None:
        self.signals.extend(other.signals)
        self.visits.extend(other.visits)
