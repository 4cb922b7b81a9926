"""Enrichment: each fix becomes an Observation, the facts the rules compare.

One ordered pipeline of small steps, each adding the facts of one concern (Traccar's handler
chain): motion, then the route run, then progress along it, then the stops the vehicle is
at, then the geofences it is in. Steps only add facts; rules decide what they mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sanitrack.settings import RulesSettings
from tracker.sites import GeofenceIndex
from tracker.state import RunProgress, VehicleState

DEFAULT_ACCURACY_M = 10.0  # a fix that does not say how accurate it is


@dataclass(slots=True)
class Observation:
    t: float  # fix time, epoch seconds
    lat: float
    lon: float
    x: float
    y: float
    accuracy_m: float
    speed_kmh: float  # negative until _motion: the fix carried none
    ignition: bool | None
    speed_reported: bool = True
    gap_s: float | None = None  # since the previous fix
    moving: bool = False
    # Standing still (None while moving): since when, and where, as the mean of the stand's
    # fixes, which is about spread_m (accuracy / sqrt(fixes)) from where the vehicle stands.
    stand_since: float | None = None
    stand_s: float = 0.0
    stand_x: float = 0.0
    stand_y: float = 0.0
    stand_lat: float = 0.0
    stand_lon: float = 0.0
    stand_spread_m: float = 0.0
    run: RunProgress | None = None  # the run being driven, once started and until it ends
    run_ended_now: RunProgress | None = None  # the run this fix ended
    off_path_m: float | None = None
    on_path: bool = True
    # This fix moved progress for the first time since a gap of unseen_gap_s or more.
    progress_after_gap: bool = False
    # This fix found the path again after fixes away from it (a detour, a street driven
    # out of turn): progress may have jumped over stops the vehicle will still serve.
    progress_rejoined: bool = False
    # (stop index, distance m) within the stop's radius, widened by the fix's accuracy
    near_stops: tuple[tuple[int, float], ...] = ()
    geofences: frozenset[int] = frozenset()
    in_site: bool = False  # a depot, transfer station or landfill


class Tracker:
    """The pipeline, configured once; ``update`` is called per fix, in fix-time order."""

    def __init__(self, settings: RulesSettings, geofences: GeofenceIndex | None) -> None:
        self.settings = settings
        self.geofences = geofences
        self._gap_speed_mps = settings.progress_max_speed_kmh / 3.6

    def update(self, state: VehicleState, obs: Observation) -> None:
        """Enrich ``obs`` and move ``state`` to it."""
        self._motion(state, obs)
        self._route_run(state, obs)
        self._progress(state, obs)
        self._stops(obs)
        self._sites(obs)
        state.t = obs.t
        state.x, state.y, state.lat, state.lon = obs.x, obs.y, obs.lat, obs.lon
        state.speed_kmh, state.accuracy_m, state.moving = obs.speed_kmh, obs.accuracy_m, obs.moving
        if obs.ignition is not None:
            state.ignition = obs.ignition
        state.geofences = obs.geofences

    def _motion(self, state: VehicleState, obs: Observation) -> None:
        obs.speed_reported = obs.speed_kmh >= 0
        if state.t is not None:
            obs.gap_s = obs.t - state.t
            if obs.speed_kmh < 0:  # the fix carried no speed: implied by the displacement
                moved_m = math.hypot(obs.x - state.x, obs.y - state.y)
                if obs.gap_s > 0 and moved_m > obs.accuracy_m:
                    obs.speed_kmh = moved_m / obs.gap_s * 3.6
        if obs.speed_kmh < 0:
            obs.speed_kmh = 0.0
        if state.moving:
            obs.moving = obs.speed_kmh >= self.settings.stopped_below_kmh
        else:
            obs.moving = obs.speed_kmh > self.settings.moving_above_kmh
        self._stand(state, obs)

    def _stand(self, state: VehicleState, obs: Observation) -> None:
        """Where and for how long the vehicle stands: the dwell at a stop is a stand."""
        if obs.moving:
            state.stand_since = None
            return
        if state.stand_since is not None and state.stand_fixes:
            # Stopped again, but somewhere else (it moved between two stopped fixes, to the
            # next bins a few metres on): a new stand, not one smeared over both places.
            n = state.stand_fixes
            away_m = math.hypot(obs.x - state.stand_x_sum / n, obs.y - state.stand_y_sum / n)
            if away_m > 2 * obs.accuracy_m + 5.0:
                state.stand_since = None
        if state.stand_since is None:
            # It stopped somewhere between the last moving fix and this one: halfway, on
            # average (a sparse fix rate would otherwise cut every dwell short by a gap).
            gap_s = min(obs.gap_s or 0.0, 2 * self.settings.stand_lead_max_s)
            state.stand_since = obs.t - gap_s / 2
            state.stand_fixes = 0
            state.stand_x_sum = state.stand_y_sum = 0.0
            state.stand_lat_sum = state.stand_lon_sum = state.stand_accuracy_sum_m = 0.0
        state.stand_fixes += 1
        n = state.stand_fixes
        state.stand_x_sum += obs.x
        state.stand_y_sum += obs.y
        state.stand_lat_sum += obs.lat
        state.stand_lon_sum += obs.lon
        state.stand_accuracy_sum_m += obs.accuracy_m
        obs.stand_since = state.stand_since
        obs.stand_s = obs.t - state.stand_since
        obs.stand_x, obs.stand_y = state.stand_x_sum / n, state.stand_y_sum / n
        obs.stand_lat, obs.stand_lon = state.stand_lat_sum / n, state.stand_lon_sum / n
        obs.stand_spread_m = state.stand_accuracy_sum_m / n / math.sqrt(n)

    def _route_run(self, state: VehicleState, obs: Observation) -> None:
        settings = self.settings
        current = state.current
        if current is not None and obs.t > current.run.planned_end_s + settings.run_overrun_s:
            end_run(state)
            obs.run_ended_now = current
            current = None
        if current is None:
            for run in state.runs:
                if (
                    run.id not in state.finished
                    and run.planned_start_s - settings.run_early_s
                    <= obs.t
                    <= run.planned_end_s + settings.run_overrun_s
                ):
                    current = state.current = RunProgress(run)
                    break
        if current is None:
            return
        if not current.started and (
            obs.t >= current.run.planned_start_s
            or (obs.moving and obs.t >= current.run.planned_start_s - settings.run_early_s)
        ):
            current.started = True
        if current.started:
            obs.run = current

    def _progress(self, state: VehicleState, obs: Observation) -> None:
        current = obs.run
        if current is None:
            return
        settings = self.settings
        run = current.run
        gap_s = obs.gap_s or 0.0
        if gap_s >= settings.unseen_gap_s:
            current.gap_since_progress = True
        standing = state.stand_since is not None and state.stand_fixes >= 2
        if standing and not current.lost and not current.gap_since_progress:
            # Still standing where progress was found: the answer has not changed (and
            # noise around a parked truck should not push progress about).
            obs.off_path_m = current.off_path_m
            obs.on_path = True
            return
        if state.t is not None:
            # How far the vehicle may have driven since the last fix: the straight line, or
            # the speeds it reported times the time (a winding street between sparse fixes).
            moved_m = math.hypot(obs.x - state.x, obs.y - state.y)
            if obs.speed_reported:
                moved_m = max(moved_m, (obs.speed_kmh + state.speed_kmh) / 2 / 3.6 * gap_s)
            current.driven_m += moved_m
        ahead_m = current.driven_m + settings.progress_slack_m
        blind = not obs.speed_reported or gap_s >= settings.unseen_gap_s
        if blind and gap_s > settings.progress_gap_free_s:
            # Speeds unknown, or a dropout: anything the vehicle could have driven.
            ahead_m += (gap_s - settings.progress_gap_free_s) * self._gap_speed_mps
        threshold = max(run.corridor_m, obs.accuracy_m + settings.accuracy_margin_m)
        accept_m = min(threshold, max(2 * obs.accuracy_m, 15.0))
        located = run.path.locate(
            obs.x, obs.y, current.progress_m, settings.progress_behind_m, ahead_m, accept_m
        )
        near_progress = located.distance_m <= threshold
        # Off the route is off the whole path; a street of the route driven out of turn is
        # on it (progress waits for the vehicle to come back to where it left off).
        obs.off_path_m = current.off_path_m = (
            located.distance_m if near_progress else run.path.distance_m(obs.x, obs.y)
        )
        obs.on_path = obs.off_path_m <= threshold
        if near_progress:
            # A gap in fix time over which the vehicle hardly moved (a device clock that
            # jumped) hid nothing: only one that carried progress past stops did.
            jumped_m = located.offset_m - current.progress_m
            obs.progress_after_gap = (
                current.gap_since_progress and jumped_m > 2 * settings.pass_margin_m
            )
            current.progress_m = located.offset_m
            current.driven_m = 0.0
            obs.progress_rejoined = current.lost
            current.gap_since_progress = current.lost = False
        else:
            current.lost = True
            if current.progress_m >= run.length_m - settings.run_end_margin_m:
                end_run(state)
                obs.run_ended_now = current

    def _stops(self, obs: Observation) -> None:
        current = obs.run
        # Faster than a crawl, a vehicle serves no stop; standing, the stand's mean position
        # (not each noisy fix) says where it is: only a crawl needs the stops near the fix.
        if (
            current is None
            or obs.speed_kmh > self.settings.probable_max_speed_kmh
            or obs.stand_since is not None
        ):
            return
        run = current.run
        x, y, accuracy_m = obs.x, obs.y, obs.accuracy_m
        near = []
        stops = run.stops
        for index in run.stops_near(x, y):
            stop = stops[index]
            dx, dy = x - stop.x, y - stop.y
            # A vehicle standing at the stop reads up to about its accuracy away from it.
            reach = stop.radius_m + (accuracy_m if accuracy_m < stop.radius_m else stop.radius_m)
            if dx * dx + dy * dy <= reach * reach:
                near.append((index, math.sqrt(dx * dx + dy * dy)))
        obs.near_stops = tuple(near)

    def _sites(self, obs: Observation) -> None:
        if self.geofences is None:
            return
        obs.geofences = self.geofences.containing(obs.x, obs.y)
        obs.in_site = bool(obs.geofences) and self.geofences.any_site(obs.geofences)


def end_run(state: VehicleState) -> None:
    if state.current is not None:
        state.current.ended = True
        state.finished = state.finished | {state.current.run.id}
        state.current = None
