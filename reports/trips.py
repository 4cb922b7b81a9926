"""One vehicle's local day: its trips, its parkings and a summary (Traccar's trips, stops and
summary reports, with Traccar's definitions).

The vehicle stands still while its speed is below ``stop_speed_kmh``; standing still for
``min_stop_s`` is a parking. The driving between two parkings is a trip when it covers
``min_trip_distance_m`` or lasts ``min_trip_s``; shorter, it was shunting about and the two
parkings are one. A gap in the data longer than ``max_gap_s`` ends a trip (nothing says how
the vehicle went meanwhile), but not a parking whose vehicle is found where it stood: a
tracker that sleeps while parked does not split the parking.

Trips and parkings share their boundary fixes (a trip starts at the parking's last standing
fix), so within a stretch of data they tile time with no overlap and no hole.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence
from typing import Any

import numpy as np
from psycopg import AsyncConnection

from reports.models import (
    DEFAULT_REPORT_SETTINGS,
    DaySummary,
    Parking,
    ReportSettings,
    Trip,
    VehicleDay,
)
from reports.sources import vehicle_device_ids
from reports.track import KMH_PER_M_S, BoolArray, CleanTrack, FloatArray, clean_track
from storage import TrackFix, track_fixes

UTC = dt.UTC
LOCAL_ZONE = zoneinfo.ZoneInfo("Asia/Ho_Chi_Minh")
# The device's odometer is shown beside the haversine distance when this share of fixes has it.
ODOMETER_MIN_SHARE = 0.8
Span = tuple[int, int]  # first and last fix index, both included


async def vehicle_day(
    conn: AsyncConnection[Any],
    tenant_id: int,
    vehicle_id: int,
    local_date: dt.date,
    settings: ReportSettings = DEFAULT_REPORT_SETTINGS,
) -> VehicleDay:
    """The report of ``vehicle_id`` over ``local_date`` in Asia/Ho_Chi_Minh, from the fixes of
    every device linked to the vehicle. Raises NotFound for another tenant's vehicle."""
    device_ids = await vehicle_device_ids(conn, tenant_id, vehicle_id)
    start, end = local_day_bounds(local_date)
    return summarise(await track_fixes(conn, tenant_id, device_ids, start, end), settings)


def local_day_bounds(local_date: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """Local midnight to the next local midnight, in UTC."""
    start = dt.datetime.combine(local_date, dt.time(), LOCAL_ZONE)
    end = dt.datetime.combine(local_date + dt.timedelta(days=1), dt.time(), LOCAL_ZONE)
    return start.astimezone(UTC), end.astimezone(UTC)


def summarise(
    fixes: Sequence[TrackFix], settings: ReportSettings = DEFAULT_REPORT_SETTINGS
) -> VehicleDay:
    """Trips, parkings and the summary of a vehicle's fixes (any order; no I/O)."""
    track = clean_track(fixes, settings.max_plausible_speed_kmh)
    if track.size == 0:
        return VehicleDay((), (), _summary(track, np.zeros(0), (), (), settings))
    speed_kmh = motion_speed_kmh(track, settings.max_gap_s)
    still = speed_kmh < settings.stop_speed_kmh
    trip_spans: list[Span] = []
    parking_spans: list[Span] = []
    for first, last in _stretches(track, still, settings):
        _classify(track, still, first, last, settings, trip_spans, parking_spans)
    trips = tuple(_trip(track, speed_kmh, span) for span in trip_spans)
    parkings = tuple(_parking(track, still, span) for span in parking_spans)
    return VehicleDay(trips, parkings, _summary(track, speed_kmh, trips, parkings, settings))


def motion_speed_kmh(track: CleanTrack, max_gap_s: float) -> FloatArray:
    """Each fix's speed: as reported, else the speed of the step that reached it (or, for
    the first fix after a gap, of the step that leaves it)."""
    reported = track.reported_speed_kmh
    missing = np.isnan(reported)
    if not missing.any():
        return reported
    usable = track.plausible & (track.step_s <= max_gap_s)
    step_kmh = np.full(track.step_s.size, np.nan)
    step_kmh[usable] = track.step_m[usable] / track.step_s[usable] * KMH_PER_M_S
    reaching = np.concatenate(([np.nan], step_kmh))
    leaving = np.concatenate((step_kmh, [np.nan]))
    derived = np.nan_to_num(np.where(np.isnan(reaching), leaving, reaching), nan=0.0)
    speed: FloatArray = np.where(missing, derived, reported)
    return speed


def _stretches(track: CleanTrack, still: BoolArray, settings: ReportSettings) -> list[Span]:
    """The stretches of data that gaps separate. A gap between two standing fixes less than
    a trip apart is no break: the vehicle stayed parked while its unit slept."""
    gap = track.step_s > settings.max_gap_s
    stayed = (
        still[:-1] & still[1:] & track.plausible & (track.step_m <= settings.min_trip_distance_m)
    )
    breaks = np.flatnonzero(gap & ~stayed)
    firsts = np.concatenate(([0], breaks + 1))
    lasts = np.concatenate((breaks, [track.size - 1]))
    return list(zip(firsts.tolist(), lasts.tolist(), strict=True))


def _standing_spans(
    track: CleanTrack, still: BoolArray, first: int, last: int, min_stop_s: float
) -> list[Span]:
    """The runs of standing fixes in [first, last] that last ``min_stop_s``."""
    window = still[first : last + 1]
    changes = np.flatnonzero(window[1:] != window[:-1]) + 1
    starts = np.concatenate(([0], changes)) + first
    ends = np.concatenate((changes - 1, [last - first])) + first
    long_enough = still[starts] & (track.t_s[ends] - track.t_s[starts] >= min_stop_s)
    return list(zip(starts[long_enough].tolist(), ends[long_enough].tolist(), strict=True))


def _classify(
    track: CleanTrack,
    still: BoolArray,
    first: int,
    last: int,
    settings: ReportSettings,
    trips: list[Span],
    parkings: list[Span],
) -> None:
    """Walk one stretch parking by parking: the driving before each is a trip, or, too
    short, no trip at all, and then the parkings on either side of it are one."""
    standing = _standing_spans(track, still, first, last, settings.min_stop_s)
    pending: Span | None = None  # the parking before the driving being looked at
    cursor = first
    for parking in [*standing, None]:
        until = last if parking is None else parking[0]
        trip = _driving_span(still, cursor, until)
        if trip is not None and not _long_enough(track, trip, settings):
            trip = None
            if pending is not None and parking is not None:
                pending = (pending[0], parking[1])
                cursor = parking[1]
                continue
        if pending is not None:
            parkings.append(pending)
        if trip is not None:
            trips.append(trip)
        pending = parking
        if parking is not None:
            cursor = parking[1]


def _driving_span(still: BoolArray, first: int, last: int) -> Span | None:
    """From the last standing fix before the first moving one to the first standing fix
    after the last moving one, within [first, last]; None if nothing moved."""
    moving = ~still[first : last + 1]
    if not moving.any():
        return None
    first_moving = first + int(np.argmax(moving))
    last_moving = last - int(np.argmax(moving[::-1]))
    return max(first, first_moving - 1), min(last, last_moving + 1)


def _long_enough(track: CleanTrack, span: Span, settings: ReportSettings) -> bool:
    first, last = span
    distance_m = track.travelled_m[last] - track.travelled_m[first]
    duration_s = track.t_s[last] - track.t_s[first]
    return bool(distance_m >= settings.min_trip_distance_m or duration_s >= settings.min_trip_s)


def _trip(track: CleanTrack, speed_kmh: FloatArray, span: Span) -> Trip:
    first, last = span
    distance_m = float(track.travelled_m[last] - track.travelled_m[first])
    duration_s = float(track.t_s[last] - track.t_s[first])
    return Trip(
        start_time=track.times[first].astimezone(UTC),
        end_time=track.times[last].astimezone(UTC),
        start_lat=float(track.lat[first]),
        start_lon=float(track.lon[first]),
        end_lat=float(track.lat[last]),
        end_lon=float(track.lon[last]),
        distance_m=distance_m,
        duration_s=duration_s,
        max_speed_kmh=float(speed_kmh[first : last + 1].max()),
        avg_speed_kmh=distance_m / duration_s * KMH_PER_M_S if duration_s > 0 else 0.0,
    )


def _parking(track: CleanTrack, still: BoolArray, span: Span) -> Parking:
    first, last = span
    standing = np.flatnonzero(still[first : last + 1]) + first
    return Parking(
        start_time=track.times[first].astimezone(UTC),
        end_time=track.times[last].astimezone(UTC),
        duration_s=float(track.t_s[last] - track.t_s[first]),
        lat=float(track.lat[standing].mean()),
        lon=float(track.lon[standing].mean()),
        ignition_on_share=_ignition_share(track, first, last),
    )


def _ignition_share(track: CleanTrack, first: int, last: int) -> float | None:
    """The share of [first, last]'s time with the ignition on, each step taking the state
    of the fix it starts from; None when no fix tells."""
    state = track.ignition[first:last]
    weight_s = track.step_s[first:last]
    known = ~np.isnan(state)
    known_s = float(weight_s[known].sum())
    if known_s > 0:
        return float((weight_s[known] * state[known]).sum()) / known_s
    told = track.ignition[first : last + 1]
    told = told[~np.isnan(told)]
    return float(told.mean()) if told.size else None


def _summary(
    track: CleanTrack,
    speed_kmh: FloatArray,
    trips: Sequence[Trip],
    parkings: Sequence[Parking],
    settings: ReportSettings,
) -> DaySummary:
    driving_s = sum(trip.duration_s for trip in trips)
    trips_m = sum(trip.distance_m for trip in trips)
    empty = track.size == 0
    return DaySummary(
        distance_m=float(track.travelled_m[-1]) if not empty else 0.0,
        driving_s=driving_s,
        stopped_s=sum(parking.duration_s for parking in parkings),
        max_speed_kmh=None if empty else float(speed_kmh.max()),
        avg_moving_speed_kmh=trips_m / driving_s * KMH_PER_M_S if driving_s > 0 else None,
        fix_count=track.read_count,
        jump_fix_count=track.jump_count,
        first_fix=None if empty else track.times[0].astimezone(UTC),
        last_fix=None if empty else track.times[-1].astimezone(UTC),
        engine_s=_engine_s(track, settings.max_gap_s),
        odometer_distance_m=_odometer_distance_m(track),
    )


def _engine_s(track: CleanTrack, max_gap_s: float) -> float | None:
    """Time with the ignition on, each step taking the state of the fix it starts from;
    a gap longer than ``max_gap_s`` is not counted (nothing says what the engine did)."""
    if np.isnan(track.ignition).all():
        return None
    on = (track.ignition[:-1] == 1.0) & (track.step_s <= max_gap_s)
    return float(track.step_s[on].sum())


def _odometer_distance_m(track: CleanTrack) -> float | None:
    """The distance the device's odometer counted (its resets left out), when most fixes
    carry it: a cross-check of the haversine figure, never a replacement."""
    readings = track.odometer_m[~np.isnan(track.odometer_m)]
    if readings.size < 2 or readings.size < ODOMETER_MIN_SHARE * track.size:
        return None
    steps = np.diff(readings)
    return float(steps[steps > 0].sum())
