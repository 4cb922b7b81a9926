"""A solved plan as route runs (ARCHITECTURE §8): stops with planned arrivals and windows,
the expected path along the streets between them, and its corridor."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from planning.dataset import DayInput, at_seconds
from planning.models import CrewMember, CrewRole, NewRouteRun, RouteStop, RunSource, StopKind
from planning.network import MatrixProvider
from planning.problem import Problem, Route, VisitKind
from sanitrack.settings import PlanningSettings


def runs_of(
    problem: Problem,
    routes: Sequence[Route],
    day: DayInput,
    provider: MatrixProvider,
    settings: PlanningSettings,
    *,
    name_suffix: str,
    crews: Mapping[int, Sequence[CrewMember]],
) -> list[NewRouteRun]:
    return [
        _run(problem, route, day, provider, settings, name_suffix, crews.get(route.vehicle, ()))
        for route in routes
    ]


def _run(
    problem: Problem,
    route: Route,
    day: DayInput,
    provider: MatrixProvider,
    settings: PlanningSettings,
    name_suffix: str,
    crew: Sequence[CrewMember],
) -> NewRouteRun:
    vehicle = problem.vehicles[route.vehicle]
    coordinates = problem.coordinates
    here = coordinates[problem.sites[vehicle.start_site].location]
    path: list[tuple[float, float]] = []
    offset_m = 0.0
    stops: list[RouteStop] = []

    def drive(to: tuple[float, float]) -> None:
        nonlocal offset_m, here
        leg = provider.path(here, to)
        path.extend(leg.points if not path else leg.points[1:])
        offset_m += leg.length_m
        here = to

    for visit in route.visits:
        if visit.kind is VisitKind.BREAK:
            continue
        if visit.kind is VisitKind.JOB:
            job = problem.jobs[visit.index]
            lat, lon = coordinates[job.location]
            drive((lat, lon))
            window = job.window
            stops.append(
                RouteStop(
                    seq=len(stops) + 1,
                    kind=StopKind.COLLECT,
                    service_point_id=job.service_point_id,
                    lat=lat,
                    lon=lon,
                    path_offset_m=offset_m,
                    planned_arrival=at_seconds(day.local_date, visit.start_s),
                    window_start=at_seconds(day.local_date, window.start_s) if window else None,
                    window_end=at_seconds(day.local_date, window.end_s) if window else None,
                    demand_kg=float(job.demand[0]),
                    service_s=job.service_s,
                    dwell_radius_m=settings.dwell_radius_m,
                )
            )
        else:
            site = problem.sites[visit.index]
            lat, lon = coordinates[site.location]
            drive((lat, lon))
            stops.append(
                RouteStop(
                    seq=len(stops) + 1,
                    kind=StopKind.UNLOAD,
                    geofence_id=site.geofence_id,
                    lat=lat,
                    lon=lon,
                    path_offset_m=offset_m,
                    planned_arrival=at_seconds(day.local_date, visit.start_s),
                    service_s=site.service_s,
                    dwell_radius_m=settings.unload_dwell_radius_m,
                )
            )
    drive(coordinates[problem.sites[vehicle.end_site].location])
    if len(path) < 2:
        path.append(path[0])
    return NewRouteRun(
        vehicle_id=_vehicle_id(vehicle.vehicle_id, vehicle.key),
        local_date=day.local_date,
        name=f"{vehicle.key} {day.local_date:%d/%m} {name_suffix}"[:200],
        planned_start=at_seconds(day.local_date, route.start_s),
        planned_end=at_seconds(day.local_date, route.end_s),
        corridor_m=settings.corridor_m,
        expected_path=tuple(path),
        path_length_m=offset_m,
        source=RunSource.PLANNER,
        stops=tuple(stops),
        crew=tuple(crew),
    )


def _vehicle_id(vehicle_id: int | None, key: str) -> int:
    if vehicle_id is None:
        raise ValueError(f"vehicle {key}: a stored plan needs the vehicle's id")
    return vehicle_id


def crews_of(
    problem: Problem,
    routes: Sequence[Route],
    day: DayInput,
) -> dict[int, list[CrewMember]]:
    """Each route's driver (the truck's own) and collectors: an area's collector rides the
    route that serves most of the area's stops (one route per person)."""
    collector_of = {p.code: p.collector_staff_id for p in day.points}
    driver_of = {t.vehicle_id: t.driver_staff_id for t in day.trucks}
    counts: dict[int, dict[int, int]] = {}  # collector -> route vehicle -> stops
    for route in routes:
        for visit in route.visits:
            if visit.kind is VisitKind.JOB:
                staff = collector_of.get(problem.jobs[visit.index].key)
                if staff is not None:
                    per_route = counts.setdefault(staff, {})
                    per_route[route.vehicle] = per_route.get(route.vehicle, 0) + 1
    crews: dict[int, list[CrewMember]] = {}
    for route in routes:
        vehicle_id = problem.vehicles[route.vehicle].vehicle_id
        driver = driver_of.get(vehicle_id) if vehicle_id is not None else None
        crews[route.vehicle] = (
            [CrewMember(staff_id=driver, role=CrewRole.DRIVER)] if driver is not None else []
        )
    for staff, per_route in sorted(counts.items()):
        best = max(per_route, key=lambda vehicle: (per_route[vehicle], -vehicle))
        if all(member.staff_id != staff for member in crews[best]):
            crews[best].append(CrewMember(staff_id=staff, role=CrewRole.COLLECTOR))
    return crews
