"""A vehicle's fixes as numpy columns, cleaned once for every report that measures them.

Cleaning is what makes distances honest: fixes in time order, one per instant (two devices
on one vehicle may report the same second), and single-fix GPS jumps dropped, so a glitch
neither adds kilometres nor splits a trip. A jump that does not come back (a real move the
device missed) is kept, but a step implying more than ``max_plausible_speed_kmh`` is never
counted as distance.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from geo import EARTH_RADIUS_M
from storage import TrackFix

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
KMH_PER_M_S = 3.6


@dataclass(frozen=True, slots=True)
class CleanTrack:
    """Fixes in time order, one column per field; ``step_m[i]`` is the distance counted from
    fix i to fix i + 1 (0 for an implausible step), ``travelled_m`` its running sum."""

    times: tuple[dt.datetime, ...]
    t_s: FloatArray  # epoch seconds
    lat: FloatArray
    lon: FloatArray
    reported_speed_kmh: FloatArray  # NaN where the fix had none
    ignition: FloatArray  # 1 on, 0 off, NaN unknown
    odometer_m: FloatArray  # NaN unknown
    step_m: FloatArray  # length n - 1
    step_s: FloatArray  # length n - 1
    plausible: BoolArray  # length n - 1
    travelled_m: FloatArray  # length n, from the first fix
    read_count: int  # fixes handed in
    jump_count: int  # fixes dropped as GPS jumps

    @property
    def size(self) -> int:
        return len(self.times)


def haversine_steps_m(lat: FloatArray, lon: FloatArray) -> FloatArray:
    """Great-circle distance between consecutive points: ``geo.haversine_m``, vectorised."""
    phi = np.radians(lat)
    d_phi = np.diff(phi)
    d_lambda = np.radians(np.diff(lon))
    a = np.sin(d_phi / 2) ** 2 + np.cos(phi[:-1]) * np.cos(phi[1:]) * np.sin(d_lambda / 2) ** 2
    distance: FloatArray = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(a, 1.0)))
    return distance


def clean_track(fixes: Sequence[TrackFix], max_plausible_speed_kmh: float) -> CleanTrack:
    """The fixes sorted, deduplicated by time and rid of single-fix jumps, as columns."""
    count = len(fixes)
    t_s = np.fromiter((f.time.timestamp() for f in fixes), np.float64, count)
    order = np.argsort(t_s, kind="stable")
    keep = np.ones(count, dtype=np.bool_)
    keep[1:] = np.diff(t_s[order]) > 0  # the first of several fixes at one instant
    order = order[keep]
    lat = np.fromiter((fixes[i].lat for i in order), np.float64, order.size)
    lon = np.fromiter((fixes[i].lon for i in order), np.float64, order.size)
    kept = _without_jumps(t_s[order], lat, lon, max_plausible_speed_kmh)
    order = order[kept]
    picked = [fixes[i] for i in order]
    t_s, lat, lon = t_s[order], lat[kept], lon[kept]
    step_m = haversine_steps_m(lat, lon)
    step_s = np.diff(t_s)
    plausible = step_m <= max_plausible_speed_kmh / KMH_PER_M_S * step_s
    step_m = np.where(plausible, step_m, 0.0)
    travelled_m = np.concatenate(([0.0], np.cumsum(step_m)))
    return CleanTrack(
        times=tuple(f.time for f in picked),
        t_s=t_s,
        lat=lat,
        lon=lon,
        reported_speed_kmh=_column(f.speed_kmh for f in picked),
        ignition=_column(None if f.ignition is None else float(f.ignition) for f in picked),
        odometer_m=_column(f.odometer_m for f in picked),
        step_m=step_m,
        step_s=step_s,
        plausible=plausible,
        travelled_m=travelled_m,
        read_count=count,
        jump_count=int(np.count_nonzero(~kept)),
    )


def _column(values: Iterable[float | None]) -> FloatArray:
    """A float column, None as NaN."""
    return np.array(list(values), dtype=np.float64)


def _without_jumps(t_s: FloatArray, lat: FloatArray, lon: FloatArray, max_kmh: float) -> BoolArray:
    """Which fixes to keep: a fix reached and left by implausible steps, while its
    neighbours are plausibly close to each other, is a jump. Steps are checked in numpy;
    only the rare implausible ones are looked at one by one."""
    keep = np.ones(t_s.size, dtype=np.bool_)
    if t_s.size < 3:
        return keep
    max_m_s = max_kmh / KMH_PER_M_S
    too_fast = haversine_steps_m(lat, lon) > max_m_s * np.diff(t_s)
    for step in np.flatnonzero(too_fast[:-1]):
        jump = step + 1
        if keep[step] and too_fast[jump]:
            skipped = haversine_steps_m(lat[[step, jump + 1]], lon[[step, jump + 1]])[0]
            if skipped <= max_m_s * (t_s[jump + 1] - t_s[step]):
                keep[jump] = False
    return keep
