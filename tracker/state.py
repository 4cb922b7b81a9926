"""What the tracker knows about each vehicle (or phone) between two fixes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from tracker.route import TrackedRun


@dataclass(slots=True)
class RunProgress:
    """How far along its current route run a vehicle is."""

    run: TrackedRun
    started: bool = False
    ended: bool = False
    progress_m: float = 0.0
    # Driven since the last fix on the path: progress may move at most this far (plus a
    # slack), so a loop, a U-turn or a street driven twice never makes it jump.
    driven_m: float = 0.0
    off_path_m: float = 0.0
    # No progress since a gap in the fixes: the next progress may skip stops served unseen.
    gap_since_progress: bool = False
    lost: bool = False  # the last fix was away from the path near the progress

    def clone(self) -> RunProgress:
        return replace(self)


@dataclass(slots=True)
class VehicleState:
    device_id: int
    tenant_id: int
    vehicle_id: int | None  # None: a staff member's phone
    label: str  # the plate (or the person) in messages
    runs: tuple[TrackedRun, ...] = ()  # the vehicle's runs of the day, by planned start
    t: float | None = None  # time of the last fix, epoch seconds
    x: float = 0.0
    y: float = 0.0
    lat: float = 0.0
    lon: float = 0.0
    speed_kmh: float = 0.0
    accuracy_m: float = 0.0
    ignition: bool | None = None
    moving: bool = False
    # The stand in progress (standing still since stand_since): its fixes' running sums.
    stand_since: float | None = None
    stand_fixes: int = 0
    stand_x_sum: float = 0.0
    stand_y_sum: float = 0.0
    stand_lat_sum: float = 0.0
    stand_lon_sum: float = 0.0
    stand_accuracy_sum_m: float = 0.0
    current: RunProgress | None = None
    finished: frozenset[int] = field(default_factory=frozenset)  # ids of ended runs
    geofences: frozenset[int] = field(default_factory=frozenset)  # raw: the last fix's

    def clone(self) -> VehicleState:
        copy = replace(self)
        copy.current = self.current.clone() if self.current else None
        return copy
