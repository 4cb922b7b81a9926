"""How each simulated device really moves during the day, with the route faults it commits.

A truck leaves the depot at its run's start, drives its route run along the streets at the
streets' speeds (a little slower in traffic), dwells at every collection point, unloads when
full and comes back. Route faults change what it drives: a detour down other streets, a stop
driven past, a hold-up that makes windowed stops late, or a truck that leaves and never comes
back. Phones walk their area and stop at customers. The truth entries are measured on the
finished Track, not on what was intended, so they are exact.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
import shapely

from planning import StopKind
from simulator.city import City, Leg, SiteKind, StreetPosition
from simulator.errors import NoPath
from simulator.faults import FaultKind, FaultRates, TruthEntry
from simulator.points import ServicePointKind, ServicePointSpec
from simulator.routes import WINDOW_HALF_S, RoutePlan
from simulator.track import Track, TrackBuilder

# Actual speed as a share of the streets' free-flow speed, per leg (traffic, turns).
SPEED_FACTOR = (0.82, 1.0)
DWELL_FACTOR = (0.85, 1.15)  # actual dwell as a share of the planned service time
DETOUR_DISTANCE_M = (250.0, 700.0)  # how far from the leg's start the wrong turn leads
DETOUR_CLEARANCE_M = 80.0  # the detour's far point lies this much beyond the corridor
HOLD_UP_EXTRA_S = (300.0, 1500.0)  # a hold-up lasts the window's half width plus this
WALK_KMH = (3.5, 5.0)
TRUTH_SAMPLE_S = 1.0


@dataclass(frozen=True, slots=True)
class StopOutcome:
    seq: int
    arrival_s: float | None  # None: never reached
    departure_s: float | None
    served: bool


@dataclass(frozen=True, slots=True)
class TruckDay:
    track: Track
    outcomes: tuple[StopOutcome, ...]
    truth: tuple[TruthEntry, ...]
    ignition_on_s: float
    ignition_off_s: float | None  # None: the truck never came back


def truck_day(
    city: City,
    plan: RoutePlan,
    device: str,
    run_name: str,
    rates: FaultRates,
    rng: random.Random,
) -> TruckDay:
    depot = city.sites[SiteKind.DEPOT]
    start_xy = city.node_xy(depot.node)
    builder = TrackBuilder(0.0, start_xy[0], start_xy[1], _street_noise(city, plan.legs[0]))
    builder.dwell(plan.planned_start_s)
    ignition_on_s = builder.now_s
    expected = shapely.LineString(plan.path_xy)
    node_xy = np.array([city.node_xy(n) for n in range(city.node_count())])
    node_distance = shapely.distance(shapely.points(node_xy), expected)

    truth: list[TruthEntry] = []
    outcomes: list[StopOutcome] = []
    detours: list[tuple[float, float | None, bool]] = []  # start, end, comes back
    hold_up_at = _pick_hold_up(plan, rates, rng)
    stretches = stretches_of(plan)
    skipping: set[int] = set()  # the stops of the stretch being driven past
    place: int | StreetPosition = depot.node
    abandoned = False

    for index, leg in enumerate(plan.legs):
        stop = plan.stops[index] if index < len(plan.stops) else None
        target: int | StreetPosition = (
            stop.point.stop
            if stop is not None and stop.point is not None
            else (stop.site.node if stop is not None and stop.site is not None else depot.node)
        )
        factor = rng.uniform(*SPEED_FACTOR)
        detour_p = rates.wrong_route_per_vehicle_hour * leg.duration_s / 3600.0
        driven = False
        if rng.random() < detour_p and index < len(plan.stops):
            never_back = rng.random() < rates.wrong_route_never_back_share
            began = builder.now_s
            if _detour(
                city, builder, place, target, node_xy, node_distance, plan, factor, rng, never_back
            ):
                detours.append((began, None if never_back else builder.now_s, not never_back))
                driven = True
                if never_back:
                    abandoned = True
                    break
        if not driven:
            if index == hold_up_at:
                _drive(builder, city, leg, factor, hold_up_s=_hold_up_s(rng))
            else:
                _drive(builder, city, leg, factor)
        place = target
        if stop is None:
            continue
        arrival = builder.now_s
        if stop.seq in stretches and rng.random() < rates.skipped_stop_share:
            skipping = set(stretches[stop.seq])
        if stop.seq in skipping:
            assert stop.point is not None
            outcomes.append(StopOutcome(stop.seq, arrival, arrival, served=False))
            truth.append(
                TruthEntry(
                    FaultKind.SKIPPED_STOP,
                    device,
                    arrival,
                    arrival,
                    run_name,
                    stop.seq,
                    stop.point.code,
                    {
                        "cause": "driven_past",
                        "speed_kmh": round(leg.speeds_kmh[-1] * factor, 1),
                        "stretch_stops": len(skipping),
                    },
                )
            )
            continue
        builder.dwell(stop.service_s * rng.uniform(*DWELL_FACTOR))
        outcomes.append(StopOutcome(stop.seq, arrival, builder.now_s, served=True))

    if abandoned:
        reached = {o.seq for o in outcomes}
        for stop in plan.stops:
            if stop.seq not in reached and stop.kind is StopKind.COLLECT:
                assert stop.point is not None
                outcomes.append(StopOutcome(stop.seq, None, None, served=False))
                truth.append(
                    TruthEntry(
                        FaultKind.SKIPPED_STOP,
                        device,
                        stop.planned_arrival_s,
                        None,
                        run_name,
                        stop.seq,
                        stop.point.code,
                        {"cause": "truck_left_the_route"},
                    )
                )
    track = builder.build()
    truth, outcomes = _really_skipped(track, plan, truth, outcomes)
    truth.extend(_excursions(track, expected, plan, detours, device, run_name))
    truth.extend(_late_stops(track, plan, outcomes, device, run_name, hold_up_at))
    truth.sort(key=lambda entry: (entry.start_s, entry.kind, entry.stop or 0))
    return TruckDay(
        track,
        tuple(sorted(outcomes, key=lambda o: o.seq)),
        tuple(truth),
        ignition_on_s,
        None if abandoned else track.end_s,
    )


def _really_skipped(
    track: Track, plan: RoutePlan, truth: list[TruthEntry], outcomes: list[StopOutcome]
) -> tuple[list[TruthEntry], list[StopOutcome]]:
    """Drop a skip whose stop the truck stood near anyway (a hold-up or an errand that happened
    to stop inside the radius): the truth must only claim what the track shows."""
    stands = track.stationary_intervals()
    by_seq = {s.seq: s for s in plan.stops}
    kept_truth, dwelled = [], set()
    for entry in truth:
        if entry.kind is FaultKind.SKIPPED_STOP and entry.stop is not None:
            stop = by_seq[entry.stop]
            if any(
                math.hypot(x - stop.x_m, y - stop.y_m) <= stop.dwell_radius_m and end > start
                for start, end, x, y in stands
            ):
                dwelled.add(entry.stop)
                continue
        kept_truth.append(entry)
    kept_outcomes = [
        StopOutcome(o.seq, o.arrival_s, o.departure_s, True) if o.seq in dwelled else o
        for o in outcomes
    ]
    return kept_truth, kept_outcomes


def _street_noise(city: City, leg: Leg) -> float:
    return city.streets[leg.street_ids[0]].gps_noise_m if leg.street_ids else 5.0


def _drive(
    builder: TrackBuilder, city: City, leg: Leg, factor: float, hold_up_s: float = 0.0
) -> None:
    noise = [city.streets[s].gps_noise_m for s in leg.street_ids]
    if hold_up_s <= 0 or len(leg.points_xy) < 3:
        builder.drive(leg.points_xy, leg.speeds_kmh, leg.street_ids, noise, factor)
        builder.dwell(hold_up_s)
        return
    middle = len(leg.points_xy) // 2  # stuck in traffic (or broken down) halfway
    builder.drive(
        leg.points_xy[: middle + 1],
        leg.speeds_kmh[:middle],
        leg.street_ids[:middle],
        noise[:middle],
        factor,
    )
    builder.dwell(hold_up_s)
    builder.drive(
        leg.points_xy[middle:],
        leg.speeds_kmh[middle:],
        leg.street_ids[middle:],
        noise[middle:],
        factor,
    )


def _detour(
    city: City,
    builder: TrackBuilder,
    start: int | StreetPosition,
    target: int | StreetPosition,
    node_xy: np.ndarray,
    node_distance: np.ndarray,
    plan: RoutePlan,
    factor: float,
    rng: random.Random,
    never_back: bool,
) -> bool:
    """Drive ``start`` -> a node well off the expected path -> ``target`` (or stay there)."""
    here = np.array(builder.here)
    away = np.hypot(*(node_xy - here).T)
    low, high = DETOUR_DISTANCE_M
    candidates = np.flatnonzero(
        (away >= low) & (away <= high) & (node_distance > plan.corridor_m + DETOUR_CLEARANCE_M)
    )
    if candidates.size == 0:
        return False
    far = int(candidates[rng.randrange(candidates.size)])
    try:
        out = city.path(start, far)
        back = None if never_back else city.path(far, target)
    except NoPath:
        return False
    _drive(builder, city, out, factor)
    if back is None:
        builder.dwell(1.0)  # parked where it went; its ignition goes off
        return True
    builder.dwell(rng.uniform(0.0, 120.0))  # an errand off the route
    _drive(builder, city, back, factor)
    return True


def _pick_hold_up(plan: RoutePlan, rates: FaultRates, rng: random.Random) -> int | None:
    """The leg (by index) before which the truck is held up, or None."""
    if rng.random() >= rates.late_run_share:
        return None
    windowed = [i for i, s in enumerate(plan.stops) if s.window_s is not None and i > 0]
    return windowed[rng.randrange(len(windowed))] if windowed else None


def _hold_up_s(rng: random.Random) -> float:
    return WINDOW_HALF_S + rng.uniform(*HOLD_UP_EXTRA_S)


def stretches_of(plan: RoutePlan) -> dict[int, list[int]]:
    """The run's stretches: consecutive collect stops each within twice the dwell radius of
    the one before, keyed by the seq of their first stop. A skip drives past a whole stretch:
    a truck that stood at a neighbour a few metres away would have served the stop anyway,
    so skipping one stop of a stretch is not something GPS can see, or the truth can claim."""
    found: dict[int, list[int]] = {}
    current: list[int] = []
    previous = None
    for stop in plan.stops:
        if stop.kind is not StopKind.COLLECT:
            previous, current = None, []
            continue
        near = previous is not None and math.hypot(
            stop.x_m - previous.x_m, stop.y_m - previous.y_m
        ) <= 2 * max(stop.dwell_radius_m, previous.dwell_radius_m)
        if near:
            current.append(stop.seq)
        else:
            current = [stop.seq]
            found[stop.seq] = current
        previous = stop
    return found


def _excursions(
    track: Track,
    expected: shapely.LineString,
    plan: RoutePlan,
    detours: list[tuple[float, float | None, bool]],
    device: str,
    run_name: str,
) -> list[TruthEntry]:
    """Every stretch of a detour where the true position lies beyond the corridor."""
    entries = []
    for began, ended, comes_back in detours:
        until = ended if ended is not None else track.end_s
        times = np.arange(began, until + TRUTH_SAMPLE_S, TRUTH_SAMPLE_S)
        samples = [track.at(float(t)) for t in times]
        distance = shapely.distance(shapely.points([(s.x_m, s.y_m) for s in samples]), expected)
        outside = distance > plan.corridor_m
        k = 0
        while k < len(times):
            if not outside[k]:
                k += 1
                continue
            first = k
            while k < len(times) and outside[k]:
                k += 1
            last = k - 1
            open_ended = not comes_back and k == len(times)
            entries.append(
                TruthEntry(
                    FaultKind.WRONG_ROUTE,
                    device,
                    float(times[first]),
                    None if open_ended else float(times[last]),
                    run_name,
                    details={
                        "max_distance_m": round(float(distance[first : last + 1].max()), 1),
                        "comes_back": comes_back,
                        "corridor_m": plan.corridor_m,
                    },
                )
            )
    return entries


def _late_stops(
    track: Track,
    plan: RoutePlan,
    outcomes: list[StopOutcome],
    device: str,
    run_name: str,
    hold_up_at: int | None,
) -> list[TruthEntry]:
    """Stops served after their window closed. Not one where the truck stood inside the
    radius in time anyway (held up a few metres short of it, or at a neighbour): GPS
    cannot tell that from serving it, so the truth must not claim it."""
    served = {o.seq: o for o in outcomes if o.served and o.arrival_s is not None}
    hold_up_seq = plan.stops[hold_up_at].seq if hold_up_at is not None else None
    stands = track.stationary_intervals()
    entries = []
    for stop in plan.stops:
        outcome = served.get(stop.seq)
        if stop.window_s is None or outcome is None or outcome.arrival_s is None:
            continue
        stood_in_time = any(
            math.hypot(x - stop.x_m, y - stop.y_m) <= stop.dwell_radius_m
            and start < stop.window_s[1]
            and end > start
            for start, end, x, y in stands
        )
        if outcome.arrival_s > stop.window_s[1] and not stood_in_time:
            assert stop.point is not None
            cause = "hold_up" if hold_up_seq is not None and stop.seq >= hold_up_seq else "drift"
            entries.append(
                TruthEntry(
                    FaultKind.LATE_STOP,
                    device,
                    stop.window_s[1],
                    outcome.arrival_s,
                    run_name,
                    stop.seq,
                    stop.point.code,
                    {
                        "cause": cause,
                        "planned_arrival_s": round(stop.planned_arrival_s, 1),
                        "late_by_s": round(outcome.arrival_s - stop.window_s[1], 1),
                    },
                )
            )
    return entries


@dataclass(frozen=True, slots=True)
class PhoneDay:
    track: Track
    visits: tuple[tuple[str, float, float], ...]  # service point code, arrival, departure


def phone_day(
    city: City,
    points: list[ServicePointSpec],
    *,
    cashier: bool,
    until_s: float,
    rng: random.Random,
) -> PhoneDay:
    """Walk from customer to customer of the area, round and round, until ``until_s``."""
    walk_kmh = rng.uniform(*WALK_KMH)
    order = list(range(len(points)))
    rng.shuffle(order)
    first = points[order[0]]
    x, y = city.position_xy(first.stop)
    builder = TrackBuilder(0.0, x, y, city.streets[first.stop.street_id].gps_noise_m)
    builder.dwell(rng.uniform(0.0, 300.0))
    visits: list[tuple[str, float, float]] = []
    place: StreetPosition = first.stop
    k = 0
    while builder.now_s < until_s and points:
        point = points[order[k % len(order)]]
        k += 1
        if point.stop != place:
            try:
                leg = city.path(place, point.stop)
            except NoPath:
                continue
            noise = [city.streets[s].gps_noise_m for s in leg.street_ids]
            builder.drive(leg.points_xy, [walk_kmh] * len(leg.speeds_kmh), leg.street_ids, noise)
            place = point.stop
        arrival = builder.now_s
        low, high = (120.0, 360.0) if cashier else (30.0, 90.0)
        if point.kind is not ServicePointKind.HOUSEHOLD:
            high *= 1.5
        builder.dwell(rng.uniform(low, high))
        visits.append((point.code, arrival, builder.now_s))
        if k > 10_000:
            break
    return PhoneDay(builder.build(), tuple(visits))


def fix_noise(rng: random.Random, noise_m: float) -> tuple[float, float]:
    """A GPS error: 2-D Gaussian whose 68 % circle is ``noise_m``, clipped at twice that."""
    sigma = noise_m / 1.515
    dx, dy = rng.gauss(0.0, sigma), rng.gauss(0.0, sigma)
    radial = math.hypot(dx, dy)
    if radial > 2 * noise_m:
        dx, dy = dx * 2 * noise_m / radial, dy * 2 * noise_m / radial
    return dx, dy
