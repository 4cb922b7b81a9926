"""Traccar-style filters that need memory of a device's recent fixes.

* duplicate: same device and time as a fix seen recently. Identical ones
  are dropped and counted (the first copy is stored); a different fix at
  the same time is rejected as ``duplicate_conflict``.
* jump: the implied speed from the neighbouring accepted fix in time is
  impossible. Neighbours are found by fix time, so a late fix is judged
  against the fixes around it, not against the newest one. A jump that
  the next ``jump_confirm_fixes`` fixes agree with is accepted (the device
  really is there, e.g. after a cold start), so one bad reference cannot
  lock a device out.
* event duplicate: same device, time and kind as a recent event. An
  identical copy (a resent message) is dropped and counted; one with other
  values is rejected as ``duplicate_conflict``. Copies older than the memory
  still reach the table once (its unique key) but are passed on again.
"""

from __future__ import annotations

import bisect
import datetime as dt
import enum
import itertools
import math
from collections import OrderedDict
from dataclasses import dataclass, field

from ingest.fix import DeviceEvent, EventKind, Fix

_EARTH_RADIUS_M = 6_371_008.8
_RECENT_FIXES = 32
_RECENT_EVENTS = 32
_MAX_DEVICES = 200_000


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


class Verdict(enum.Enum):
    ACCEPT = "accept"
    DUPLICATE = "duplicate"
    DUPLICATE_CONFLICT = "duplicate_conflict"
    JUMP = "jump"


@dataclass(frozen=True, slots=True)
class JumpRules:
    max_implied_speed_kmh: float = 250.0
    min_distance_m: float = 100.0
    confirm_fixes: int = 2


@dataclass(slots=True)
class _DeviceMemory:
    times: list[dt.datetime] = field(default_factory=list)  # accepted, sorted
    places: list[tuple[float, float]] = field(default_factory=list)
    suspects: list[Fix] = field(default_factory=list)  # consecutive rejected jumps


class FixFilter:
    """Per-device memory of recent accepted fixes; bounded in devices and fixes."""

    def __init__(self, rules: JumpRules) -> None:
        self._rules = rules
        self._devices: OrderedDict[int, _DeviceMemory] = OrderedDict()

    def check(self, device_id: int, fix: Fix) -> Verdict:
        memory = self._devices.get(device_id)
        if memory is None:
            memory = self._devices[device_id] = _DeviceMemory()
            if len(self._devices) > _MAX_DEVICES:
                self._devices.popitem(last=False)
        else:
            self._devices.move_to_end(device_id)
        index = bisect.bisect_left(memory.times, fix.time)
        if index < len(memory.times) and memory.times[index] == fix.time:
            if memory.places[index] == (fix.lat, fix.lon):
                return Verdict.DUPLICATE
            return Verdict.DUPLICATE_CONFLICT
        if self._is_jump(memory, index, fix):
            if self._confirmed(memory, fix):
                memory.suspects.clear()
            else:
                memory.suspects.append(fix)
                del memory.suspects[: -self._rules.confirm_fixes]
                return Verdict.JUMP
        else:
            memory.suspects.clear()
        memory.times.insert(index, fix.time)
        memory.places.insert(index, (fix.lat, fix.lon))
        if len(memory.times) > _RECENT_FIXES:
            del memory.times[0], memory.places[0]
        return Verdict.ACCEPT

    def _too_fast(
        self, a: tuple[dt.datetime, float, float], b: tuple[dt.datetime, float, float]
    ) -> bool:
        meters = distance_m(a[1], a[2], b[1], b[2])
        if meters < self._rules.min_distance_m:
            return False
        seconds = abs((b[0] - a[0]).total_seconds())
        return seconds == 0 or meters / seconds * 3.6 > self._rules.max_implied_speed_kmh

    def _is_jump(self, memory: _DeviceMemory, index: int, fix: Fix) -> bool:
        here = (fix.time, fix.lat, fix.lon)
        if index > 0:
            return self._too_fast((memory.times[index - 1], *memory.places[index - 1]), here)
        if index < len(memory.times):  # older than everything remembered: judge by the next one
            return self._too_fast(here, (memory.times[index], *memory.places[index]))
        return False

    def _confirmed(self, memory: _DeviceMemory, fix: Fix) -> bool:
        """The fix agrees with the run of rejected jumps just before it."""
        if len(memory.suspects) < self._rules.confirm_fixes - 1 or not memory.suspects:
            return False
        run = [*memory.suspects[-(self._rules.confirm_fixes - 1) :], fix]
        return all(
            not self._too_fast((a.time, a.lat, a.lon), (b.time, b.lat, b.lon))
            for a, b in itertools.pairwise(run)
        )


_EventKey = tuple[dt.datetime, EventKind]
_EventValues = tuple[float | None, float | None, bool | None, int | None, int | None, str | None]


class EventFilter:
    """Per-device memory of recent events; bounded in devices and events."""

    def __init__(self) -> None:
        self._devices: OrderedDict[int, dict[_EventKey, _EventValues]] = OrderedDict()

    def check(self, event: DeviceEvent) -> Verdict:
        recent = self._devices.get(event.device_id)
        if recent is None:
            recent = self._devices[event.device_id] = {}
            if len(self._devices) > _MAX_DEVICES:
                self._devices.popitem(last=False)
        else:
            self._devices.move_to_end(event.device_id)
        key = (event.time, event.kind)
        values = (event.lat, event.lon, event.value, event.route_run_id, event.stop_seq, event.note)
        seen = recent.get(key)
        if seen is not None:
            return Verdict.DUPLICATE if seen == values else Verdict.DUPLICATE_CONFLICT
        recent[key] = values
        if len(recent) > _RECENT_EVENTS:
            del recent[next(iter(recent))]  # the first remembered
        return Verdict.ACCEPT
