"""Put a scenario into the system through the project's own services (fleet, customers,
planning), so its tenant, vehicles, staff, devices, customers, geofences and route runs show
up everywhere. Re-running is safe: existing objects are reused, devices get new secrets, and
the simulator's earlier runs of the day are cancelled, started or not.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

import customers
import fleet
import planning
from simulator.city import SiteKind
from simulator.network import StreetClass
from simulator.routes import RoutePlan
from simulator.scenario import Scenario
from storage import Pool

GEOFENCE_KIND = {
    SiteKind.DEPOT: fleet.GeofenceKind.DEPOT,
    SiteKind.TRANSFER_STATION: fleet.GeofenceKind.TRANSFER_STATION,
    SiteKind.LANDFILL: fleet.GeofenceKind.LANDFILL,
}


@dataclass(frozen=True, slots=True)
class Registered:
    tenant_id: int
    secrets: dict[str, str]  # device slug -> secret (shown once; the simulator logs in with it)
    route_run_ids: dict[str, int]  # vehicle device slug -> route run id
    staff_ids: dict[str, int]  # staff code -> id


async def register_scenario(
    pool: Pool,
    scenario: Scenario,
    *,
    route_runs: bool = True,
    progress: Callable[[str], None] | None = None,
) -> Registered:
    say = progress or (lambda _text: None)
    config = scenario.config
    async with pool.connection() as conn:
        tenant = await fleet.ensure_tenant(conn, config.tenant, config.tenant_name)
        await conn.commit()
        existing = {d.slug: d for d in await fleet.list_devices(conn, tenant.id)}
        secrets: dict[str, str] = {}
        vehicle_ids: dict[str, int] = {}
        staff_ids: dict[str, int] = {}
        for n, vehicle in enumerate(scenario.vehicles, start=1):
            vehicle_id = await fleet.ensure_vehicle(
                conn,
                tenant.id,
                vehicle.code,
                f"Xe ép rác {vehicle.index + 1}",
                capacity_kg=round(config.capacity_kg),
            )
            vehicle_ids[vehicle.device] = vehicle_id
            staff_ids[vehicle.driver_code] = await fleet.ensure_staff(
                conn, tenant.id, vehicle.driver_code, vehicle.driver_name, fleet.StaffRole.DRIVER
            )
            # the planner gives the truck's runs its own driver
            await fleet.set_truck_shift(
                conn, tenant.id, vehicle_id, driver_staff_id=staff_ids[vehicle.driver_code]
            )
            secrets[vehicle.device] = await _device_secret(
                conn,
                tenant,
                existing,
                vehicle.device,
                fleet.DeviceKind.TRUCK,
                vehicle_id=vehicle_id,
            )
            if n % 500 == 0:
                await conn.commit()
                say(f"registered trucks: {n}/{len(scenario.vehicles)}")
        for n, phone in enumerate(scenario.phones, start=1):
            role = fleet.StaffRole.CASHIER if phone.cashier else fleet.StaffRole.COLLECTOR
            staff_id = await fleet.ensure_staff(
                conn, tenant.id, phone.staff_code, phone.staff_name, role
            )
            staff_ids[phone.staff_code] = staff_id
            secrets[phone.device] = await _device_secret(
                conn, tenant, existing, phone.device, fleet.DeviceKind.PHONE, staff_id=staff_id
            )
            if n % 500 == 0:
                await conn.commit()
                say(f"registered phones: {n}/{len(scenario.phones)}")
        await conn.commit()
        say(f"registered {len(secrets)} devices")

        point_ids = await customers.ensure_service_points(
            conn,
            tenant.id,
            [
                customers.NewServicePoint(
                    code=p.code,
                    name=p.name,
                    kind=customers.CustomerKind(str(p.kind)),
                    phone=p.phone,
                    address=p.address,
                    ward=p.ward,
                    lat=p.lat,
                    lon=p.lon,
                    position_source=customers.PositionSource.SIMULATED,
                    so_khau=p.so_khau,
                    volume_m3_per_day=p.volume_m3_per_day,
                    waste_kg_per_day=p.waste_kg_per_day,
                )
                for p in scenario.points
            ],
            # The city's customers are long-standing: billed since the start of the year.
            billed_from=dt.date(scenario.start.year, 1, 1),
        )
        geofence_ids = {
            kind: await fleet.ensure_geofence(
                conn, tenant.id, site.name, GEOFENCE_KIND[kind], site.polygon
            )
            for kind, site in scenario.city.sites.items()
        }
        streets = await planning.save_street_map(
            conn, tenant.id, map_streets(scenario), planning.StreetSource.SIMULATOR
        )
        await conn.commit()
        say(
            f"registered {len(point_ids)} service points, {len(geofence_ids)} geofences"
            f" and {streets} streets"
        )

        run_ids: dict[str, int] = {}
        if route_runs:
            # The trucks of an earlier simulation of the day are gone: its runs, started or
            # not, give way to this one's (a restarted demo would show both).
            await planning.cancel_planned_runs(
                conn, tenant.id, scenario.local_date, planning.RunSource.SIMULATOR, started_too=True
            )
            crews: dict[int, list[planning.CrewMember]] = {}
            for phone in scenario.phones:
                if not phone.cashier:
                    crews.setdefault(phone.area, []).append(
                        planning.CrewMember(
                            staff_id=staff_ids[phone.staff_code], role=planning.CrewRole.COLLECTOR
                        )
                    )
            for n, vehicle in enumerate(scenario.vehicles, start=1):
                crew = [
                    planning.CrewMember(
                        staff_id=staff_ids[vehicle.driver_code], role=planning.CrewRole.DRIVER
                    ),
                    *(
                        crews.get(vehicle.plan.vehicle, [])
                        if vehicle.index < len(scenario.plans)
                        else []
                    ),
                ]
                run = route_run_of(
                    scenario,
                    vehicle.plan,
                    vehicle_ids[vehicle.device],
                    vehicle.run_name,
                    point_ids,
                    geofence_ids,
                    crew,
                )
                run_ids[vehicle.device] = await _create_run(conn, tenant.id, run)
                if n % 100 == 0:
                    await conn.commit()
                    say(f"route runs: {n}/{len(scenario.vehicles)}")
            await conn.commit()
            say(f"registered {len(run_ids)} route runs for {scenario.local_date}")
    return Registered(tenant.id, secrets, run_ids, staff_ids)


async def _create_run(conn: AsyncConnection[Any], tenant_id: int, run: planning.NewRouteRun) -> int:
    """Create the run; a scenario registered twice in one minute gets "(2)" after its name."""
    name = run.name
    for attempt in range(2, 100):
        try:
            return await planning.create_route_run(conn, tenant_id, run)
        except planning.Conflict:
            run = run.model_copy(update={"name": f"{name} ({attempt})"})
    raise planning.Conflict(f"route run {name!r}: too many runs of that name")


async def _device_secret(
    conn: AsyncConnection[Any],
    tenant: fleet.Tenant,
    existing: dict[str, fleet.Device],
    slug: str,
    kind: fleet.DeviceKind,
    *,
    vehicle_id: int | None = None,
    staff_id: int | None = None,
) -> str:
    if slug in existing:
        return await fleet.rotate_secret(conn, existing[slug].id)
    created = await fleet.create_device(
        conn, tenant, slug, kind, vehicle_id=vehicle_id, staff_id=staff_id
    )
    return created.secret


def route_run_of(
    scenario: Scenario,
    plan: RoutePlan,
    vehicle_id: int,
    name: str,
    point_ids: dict[str, int],
    geofence_ids: dict[SiteKind, int],
    crew: list[planning.CrewMember],
) -> planning.NewRouteRun:
    """The route run of ``plan`` as the planner would store it."""
    projection = scenario.city.projection

    def at(seconds: float) -> dt.datetime:
        return scenario.start + dt.timedelta(seconds=seconds)

    path = tuple(
        (round(lon, 7), round(lat, 7))
        for lat, lon in (projection.to_latlon(x, y) for x, y in plan.path_xy)
    )
    return planning.NewRouteRun(
        vehicle_id=vehicle_id,
        local_date=scenario.local_date,
        name=name,
        planned_start=at(plan.planned_start_s),
        planned_end=at(plan.planned_end_s),
        corridor_m=plan.corridor_m,
        expected_path=path,
        path_length_m=plan.path_length_m,
        source=planning.RunSource.SIMULATOR,
        stops=tuple(
            planning.RouteStop(
                seq=stop.seq,
                kind=stop.kind,
                service_point_id=point_ids[stop.point.code] if stop.point else None,
                geofence_id=geofence_ids[stop.site.kind] if stop.site else None,
                lat=stop.lat,
                lon=stop.lon,
                path_offset_m=stop.path_offset_m,
                planned_arrival=at(stop.planned_arrival_s),
                window_start=at(stop.window_s[0]) if stop.window_s else None,
                window_end=at(stop.window_s[1]) if stop.window_s else None,
                demand_kg=stop.demand_kg,
                service_s=round(stop.service_s),
                dwell_radius_m=stop.dwell_radius_m,
            )
            for stop in plan.stops
        ),
        crew=tuple(crew),
    )


_STREET_KIND = {
    StreetClass.ARTERIAL: planning.StreetKind.ARTERIAL,
    StreetClass.STREET: planning.StreetKind.SECONDARY,
    StreetClass.ALLEY: planning.StreetKind.ALLEY,
}


def map_streets(scenario: Scenario) -> list[planning.MapStreet]:
    """The city's street segments as map lines ([lon, lat], GeoJSON order)."""
    city = scenario.city
    lines = []
    for street in city.streets:
        (lat0, lon0), (lat1, lon1) = city.node_latlon(street.start), city.node_latlon(street.end)
        lines.append(
            planning.MapStreet(
                street.name,
                _STREET_KIND[street.street_class],
                street.one_way,
                ((round(lon0, 6), round(lat0, 6)), (round(lon1, 6), round(lat1, 6))),
                street.speed_kmh,
            )
        )
    return lines
