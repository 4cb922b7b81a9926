"""A depot's day as the company keeps it, turned into a ``planning.problem.Problem``.

Matrix rows: the depot first, then the dump sites (transfer stations, landfills), then one
row per due service point. Times are seconds from the plan date's local midnight.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import customers
import fleet
from planning.errors import InvalidValue
from planning.network import MatrixProvider
from planning.problem import (
    Break,
    Job,
    Objective,
    Problem,
    Site,
    SiteKind,
    TimeWindow,
    Vehicle,
)
from sanitrack.settings import PlanningSettings

LOCAL_ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
DUMP_KINDS = (fleet.GeofenceKind.TRANSFER_STATION, fleet.GeofenceKind.LANDFILL)


@dataclass(frozen=True, slots=True)
class DayInput:
    """What planning one depot's day reads; ``points`` are the due points to plan."""

    tenant_id: int
    local_date: dt.date
    depot: fleet.Geofence
    dumps: tuple[fleet.Geofence, ...]
    points: tuple[customers.DuePoint, ...]
    trucks: tuple[fleet.TruckShift, ...]


def local_midnight(local_date: dt.date) -> dt.datetime:
    return dt.datetime.combine(local_date, dt.time(0), tzinfo=LOCAL_ZONE)


def seconds_of(local_date: dt.date, moment: dt.datetime) -> int:
    """``moment`` as seconds from the date's local midnight."""
    return math.floor((moment - local_midnight(local_date)).total_seconds())


def at_seconds(local_date: dt.date, t_s: int) -> dt.datetime:
    return local_midnight(local_date) + dt.timedelta(seconds=t_s)


def centre(geofence: fleet.Geofence) -> tuple[float, float]:
    """(lat, lon) of a geofence: the mean of its ring's corners."""
    corners = geofence.ring[:-1] if geofence.ring[0] == geofence.ring[-1] else geofence.ring
    return (
        sum(lat for lat, _ in corners) / len(corners),
        sum(lon for _, lon in corners) / len(corners),
    )


def choose_depot(geofences: Sequence[fleet.Geofence], depot_id: int | None) -> fleet.Geofence:
    depots = [g for g in geofences if g.kind is fleet.GeofenceKind.DEPOT]
    if depot_id is not None:
        for depot in depots:
            if depot.id == depot_id:
                return depot
        raise InvalidValue(f"depot: geofence {depot_id} is not a depot of this company")
    if len(depots) != 1:
        names = ", ".join(f"{d.id} ({d.name})" for d in depots) or "none"
        raise InvalidValue(f"depot: choose one of the company's depots: {names}")
    return depots[0]


def trucks_of(day_trucks: Sequence[fleet.TruckShift], depot_id: int) -> list[fleet.TruckShift]:
    """The trucks kept at the depot (trucks with no depot set count for every depot)."""
    return [t for t in day_trucks if t.depot_geofence_id in (None, depot_id)]


def problem_of(
    day: DayInput,
    provider: MatrixProvider,
    settings: PlanningSettings,
    *,
    name: str = "",
    extra_points: Sequence[tuple[float, float]] = (),
) -> Problem:
    """The day as a problem; ``extra_points`` (lat, lon) get matrix rows after the service
    points (where re-planned trucks are now), in the same single matrix computation."""
    if not day.trucks:
        raise InvalidValue("vehicles: no truck with a capacity is in service at this depot")
    points_latlon = [centre(day.depot), *(centre(d) for d in day.dumps)]
    points_latlon += [(p.lat, p.lon) for p in day.points]
    points_latlon += extra_points
    matrix = provider.travel(points_latlon)
    with_volume = any(t.capacity_m3 for t in day.trucks)
    dimensions = ("kg", "l") if with_volume else ("kg",)
    sites = [
        # With no dump site on record the trucks are taken to unload at the depot.
        Site(
            day.depot.name,
            0,
            SiteKind.DEPOT if day.dumps else SiteKind.DEPOT_DUMP,
            geofence_id=day.depot.id,
        ),
        *(
            Site(d.name, 1 + n, SiteKind.DUMP, service_s=settings.unload_s, geofence_id=d.id)
            for n, d in enumerate(day.dumps)
        ),
    ]
    first_point = 1 + len(day.dumps)
    jobs = [
        Job(
            key=p.code,
            location=first_point + n,
            demand=(math.ceil(p.waste_kg), math.ceil(p.volume_l))[: len(dimensions)],
            service_s=p.service_s,
            window=_window(p.window_open, p.window_close),
            service_point_id=p.id,
            area=p.area_code,
        )
        for n, p in enumerate(day.points)
    ]
    dumps = tuple(range(1, len(sites))) or (0,)
    vehicles = [_vehicle(t, dimensions, dumps) for t in day.trucks]
    return Problem(
        name=name or f"{day.depot.name} {day.local_date}",
        dimensions=dimensions,
        jobs=tuple(jobs),
        sites=tuple(sites),
        vehicles=tuple(vehicles),
        matrix=matrix,
        objective=Objective(
            per_m=1, per_s=settings.second_cost_m, per_vehicle=settings.vehicle_cost_m
        ),
        coordinates=tuple(points_latlon),
    )


def _vehicle(
    truck: fleet.TruckShift, dimensions: tuple[str, ...], dumps: tuple[int, ...]
) -> Vehicle:
    # A truck without a volume figure is limited by weight alone.
    unlimited_l = 10**9
    capacity = (
        truck.capacity_kg,
        round(truck.capacity_m3 * 1000) if truck.capacity_m3 else unlimited_l,
    )[: len(dimensions)]
    pause = None
    if truck.break_start and truck.break_end and truck.break_s:
        pause = Break(
            _window(truck.break_start, truck.break_end) or TimeWindow(0, 0), truck.break_s
        )
    return Vehicle(
        key=truck.code,
        capacity=capacity,
        start_site=0,
        end_site=0,
        shift=TimeWindow(_seconds(truck.shift_start), _seconds(truck.shift_end)),
        max_duration_s=truck.max_route_s,
        dumps=dumps,
        break_=pause,
        vehicle_id=truck.vehicle_id,
    )


def _seconds(t: dt.time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def _window(start: dt.time | None, end: dt.time | None) -> TimeWindow | None:
    if start is None or end is None:
        return None
    return TimeWindow(_seconds(start), _seconds(end))
