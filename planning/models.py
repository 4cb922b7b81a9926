"""Route runs (ARCHITECTURE §8): a planned route for one vehicle on one local date."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator


class StopKind(enum.StrEnum):
    COLLECT = "collect"  # a service point's waste is picked up
    UNLOAD = "unload"  # the truck empties at a transfer station or landfill


class RunStatus(enum.StrEnum):
    PLANNED = "planned"
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class RunSource(enum.StrEnum):
    PLANNER = "planner"
    SIMULATOR = "simulator"
    MANUAL = "manual"


class CrewRole(enum.StrEnum):
    DRIVER = "driver"
    COLLECTOR = "collector"


class RouteStop(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int = Field(ge=1)
    kind: StopKind
    service_point_id: int | None = None
    geofence_id: int | None = None
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    path_offset_m: float = Field(ge=0)
    planned_arrival: AwareDatetime
    window_start: AwareDatetime | None = None
    window_end: AwareDatetime | None = None
    demand_kg: float = Field(default=0, ge=0)
    service_s: int = Field(default=0, ge=0)
    dwell_radius_m: float = Field(gt=0, le=500)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.kind is StopKind.COLLECT and self.service_point_id is None:
            raise ValueError("service_point_id: a collect stop names its service point")
        if self.window_start and self.window_end and self.window_end < self.window_start:
            raise ValueError(
                f"window_end: {self.window_end} is before window_start {self.window_start}"
            )
        return self


class CrewMember(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    staff_id: int
    role: CrewRole


class NewRouteRun(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    vehicle_id: int
    local_date: dt.date
    name: str = Field(min_length=1, max_length=200)
    planned_start: AwareDatetime
    planned_end: AwareDatetime
    corridor_m: float = Field(gt=0, le=1000)
    # [lon, lat] positions, GeoJSON order
    expected_path: tuple[tuple[float, float], ...] = Field(min_length=2)
    path_length_m: float = Field(ge=0)
    source: RunSource
    stops: tuple[RouteStop, ...]
    crew: tuple[CrewMember, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.planned_end < self.planned_start:
            raise ValueError(f"planned_end: {self.planned_end} is before {self.planned_start}")
        for n, stop in enumerate(self.stops, start=1):
            if stop.seq != n:
                raise ValueError(f"stops[{n - 1}].seq: {stop.seq}, expected {n} (1, 2, 3 ...)")
            if stop.path_offset_m > self.path_length_m + 1e-6:
                raise ValueError(
                    f"stops[{n - 1}].path_offset_m: {stop.path_offset_m} is beyond the path's"
                    f" {self.path_length_m} m"
                )
        for before, after in zip(self.stops, self.stops[1:], strict=False):
            if after.path_offset_m < before.path_offset_m:
                raise ValueError(f"stops[{after.seq - 1}].path_offset_m: goes backwards")
            if after.planned_arrival < before.planned_arrival:
                raise ValueError(f"stops[{after.seq - 1}].planned_arrival: goes backwards")
        for lon, lat in self.expected_path:
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                raise ValueError(f"expected_path: ({lon}, {lat}) is not a [lon, lat] position")
        return self


class RouteRun(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    tenant_id: int
    vehicle_id: int
    local_date: dt.date
    name: str
    planned_start: AwareDatetime
    planned_end: AwareDatetime
    corridor_m: float
    expected_path: tuple[tuple[float, float], ...]
    path_length_m: float
    status: RunStatus
    source: RunSource
    stops: tuple[RouteStop, ...]
    crew: tuple[CrewMember, ...]
