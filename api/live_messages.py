"""The live feed's messages: what clients send (subscribe, with a filter) and the JSON of
what they receive. The conversation itself is in api.live."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    StrictInt,
    ValidationError,
    field_validator,
)

from alerts.models import Alert, StopVisit
from api.auth import Principal

MAX_FILTER_IDS = 10_000

Channel = Literal["alerts", "stops", "positions"]


# ---------------------------------------------------------------- what clients send


class LiveFilter(BaseModel):
    """The vehicles and route runs a client follows; an empty set follows all of them.

    ``bbox`` ([west, south, east, north] degrees) narrows positions to an area of the map;
    alerts and stop visits are not narrowed by it (an alert out of view still matters).
    Positions follow ``routes`` through the routes' vehicles.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    vehicles: frozenset[StrictInt] = Field(default=frozenset(), max_length=MAX_FILTER_IDS)
    routes: frozenset[StrictInt] = Field(default=frozenset(), max_length=MAX_FILTER_IDS)
    bbox: tuple[FiniteFloat, FiniteFloat, FiniteFloat, FiniteFloat] | None = None

    @field_validator("bbox")
    @classmethod
    def _sane_bbox(
        cls, value: tuple[float, float, float, float] | None
    ) -> tuple[float, float, float, float] | None:
        if value is not None:
            west, south, east, north = value
            if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
                raise ValueError("must be [west, south, east, north] in degrees, west <= east")
        return value

    @property
    def everything(self) -> bool:
        return not self.vehicles and not self.routes and self.bbox is None

    def matches(self, vehicle_id: int | None, route_run_id: int | None) -> bool:
        return (not self.vehicles or vehicle_id in self.vehicles) and (
            not self.routes or route_run_id in self.routes
        )

    def matches_position(
        self, position: LivePosition, route_vehicles: frozenset[int] = frozenset()
    ) -> bool:
        """``route_vehicles``: the vehicles of ``routes``, resolved when subscribing."""
        if self.vehicles and position.vehicle_id not in self.vehicles:
            return False
        if self.routes and position.vehicle_id not in route_vehicles:
            return False
        if self.bbox is not None:
            west, south, east, north = self.bbox
            return west <= position.lon <= east and south <= position.lat <= north
        return True


class SubscribeRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    op: Literal["subscribe"]
    channels: frozenset[Channel] = Field(min_length=1)
    filter: LiveFilter = LiveFilter()

    @field_validator("filter", mode="before")
    @classmethod
    def _null_is_no_filter(cls, value: object) -> object:
        return {} if value is None else value


@dataclasses.dataclass(frozen=True, slots=True)
class RequestError:
    field: str | None  # None: the message as a whole (not JSON, not an object)
    reason: str


def parse_request(payload: str | bytes) -> SubscribeRequest | RequestError:
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as error:
        return RequestError(None, f"not valid JSON: {error}")
    if not isinstance(data, dict):
        return RequestError(None, "expected a JSON object with an 'op'")
    try:
        return SubscribeRequest.model_validate(data)
    except ValidationError as invalid:
        first = invalid.errors()[0]  # one answer per message keeps a flood of errors bounded
        reason = first["msg"]
        if first["type"] not in ("missing", "extra_forbidden") and _is_scalar(first["input"]):
            reason += f", got {orjson.dumps(first['input']).decode()[:80]}"
        return RequestError(_field_name(first["loc"]), reason)


def _field_name(loc: tuple[int | str, ...]) -> str | None:
    name = ""
    for part in loc:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else part
    return name or None


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float)


# ---------------------------------------------------------------- what clients receive


@dataclasses.dataclass(frozen=True, slots=True)
class LivePosition:
    """A vehicle's or phone's latest fix as the live map shows it."""

    tenant_id: int
    device_id: int
    device: str  # the device's slug
    kind: str  # truck or phone
    vehicle_id: int | None
    staff_id: int | None
    time: dt.datetime
    lat: float
    lon: float
    speed_kmh: float | None
    heading_deg: float | None


@dataclasses.dataclass(frozen=True, slots=True)
class Snapshot:
    alerts: Sequence[Alert]  # the open (and acknowledged, unresolved) alerts
    stop_visits: Sequence[StopVisit]  # today's
    positions: Sequence[LivePosition] = ()  # the latest of each device
    route_vehicles: frozenset[int] = frozenset()  # the vehicles of the filter's routes


# Reads the current state for a principal and filter; the caller decides the query.
SnapshotQuery = Callable[[Principal, LiveFilter], Awaitable[Snapshot]]


def alert_json(alert: Alert) -> dict[str, Any]:
    """An alert as JSON values: times ISO 8601 UTC with Z, enums as their values."""
    return _dataclass_json(alert)


def visit_json(visit: StopVisit) -> dict[str, Any]:
    """A stop visit as JSON values: times ISO 8601 UTC with Z, enums as their values."""
    return _dataclass_json(visit)


def position_json(position: LivePosition) -> dict[str, Any]:
    """A position as JSON values, without its tenant (the client knows its own)."""
    return {
        "device_id": position.device_id,
        "device": position.device,
        "kind": position.kind,
        "vehicle_id": position.vehicle_id,
        "staff_id": position.staff_id,
        "time": utc_text(position.time),
        "lat": position.lat,
        "lon": position.lon,
        "speed_kmh": position.speed_kmh,
        "heading_deg": position.heading_deg,
    }


POSITION_COLUMNS = ("device_id", "vehicle_id", "t_ms", "lat", "lon", "speed_kmh", "heading_deg")


def position_row(position: LivePosition) -> list[Any]:
    """A position as one compact row of a ``positions`` frame (POSITION_COLUMNS)."""
    return [
        position.device_id,
        position.vehicle_id,
        round(position.time.timestamp() * 1000),
        position.lat,
        position.lon,
        position.speed_kmh,
        position.heading_deg,
    ]


def utc_text(at: dt.datetime) -> str:
    """``2026-12-04T08:15:30.250Z``; a naive time is taken as UTC, as it is stored."""
    aware = at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).isoformat(timespec="milliseconds").removesuffix("+00:00") + "Z"


def _dataclass_json(value: Alert | StopVisit) -> dict[str, Any]:
    return {f.name: _json_value(getattr(value, f.name)) for f in dataclasses.fields(value)}


def _json_value(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime):
        return utc_text(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): _json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_value(item) for item in value]
    return value


def encode(message: dict[str, Any] | list[Any]) -> bytes:
    # default=str: evidence is free-form; an odd value in it must not stop the feed.
    return orjson.dumps(message, default=str)
