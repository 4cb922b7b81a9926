"""A small tenant for the alert tests: a truck with its device, a driver and a dispatcher,
two service points and a route run that visits them."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import customers
import fleet
import planning
from alerts import (
    AlertKind,
    AlertSignal,
    Change,
    Resolution,
    Severity,
    StopVisit,
    VisitEvidence,
    VisitStatus,
    apply_signals,
)
from storage import Pool

T0 = dt.datetime(2026, 12, 4, 1, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class World:
    tenant_id: int
    tenant_slug: str
    vehicle_id: int
    device_id: int
    driver_id: int
    dispatcher_id: int
    point_ids: tuple[int, int]
    run_id: int

    def signal(
        self,
        change: Change,
        key: str,
        at: dt.datetime,
        *,
        kind: AlertKind = AlertKind.MISSED_STOP,
        stop_seq: int | None = 2,
        evidence: dict[str, Any] | None = None,
        resolution: Resolution | None = None,
        severity: Severity = Severity.WARNING,
        message: str = "Xe 29C-10001 đã đi qua điểm 2 mà chưa thu gom",
    ) -> AlertSignal:
        return AlertSignal(
            change=change,
            key=key,
            kind=kind,
            severity=severity,
            tenant_id=self.tenant_id,
            device_id=self.device_id,
            vehicle_id=self.vehicle_id,
            route_run_id=self.run_id,
            stop_seq=stop_seq,
            at=at,
            message=message,
            evidence={} if evidence is None else evidence,
            resolution=resolution,
        )

    def visit(self, stop_seq: int, arrival_at: dt.datetime, **changes: Any) -> StopVisit:
        values: dict[str, Any] = {
            "tenant_id": self.tenant_id,
            "route_run_id": self.run_id,
            "stop_seq": stop_seq,
            "vehicle_id": self.vehicle_id,
            "device_id": self.device_id,
            "service_point_id": self.point_ids[stop_seq - 1],
            "status": VisitStatus.PROBABLE,
            "evidence": VisitEvidence.SLOW_PASS,
            "arrival_at": arrival_at,
            "departure_at": None,
            "dwell_s": 4.0,
            "closest_m": 18.5,
            "lat": 20.9701,
            "lon": 105.7702,
            "late": False,
            "details": {"fixes": 3},
        }
        return StopVisit(**(values | changes))


async def make_world(pool: Pool) -> World:
    slug = f"t-{uuid.uuid4().hex[:8]}"
    async with pool.connection() as conn:
        tenant = await fleet.ensure_tenant(conn, slug, "Công ty Môi trường")
        vehicle_id = await fleet.ensure_vehicle(conn, tenant.id, "29C-10001", capacity_kg=5000)
        driver_id = await fleet.ensure_staff(
            conn, tenant.id, "NV1", "Trần Văn Bình", fleet.StaffRole.DRIVER
        )
        dispatcher_id = await fleet.ensure_staff(
            conn, tenant.id, "NV2", "Lê Thị Hoa", fleet.StaffRole.DISPATCHER
        )
        device = await fleet.create_device(
            conn, tenant, "truck-1", fleet.DeviceKind.TRUCK, vehicle_id=vehicle_id
        )
        points = await customers.ensure_service_points(
            conn,
            tenant.id,
            [
                customers.NewServicePoint(
                    code=f"KH{n}", name=f"Hộ {n}", kind="household", lat=20.97, lon=105.77
                )
                for n in (1, 2)
            ],
        )
        run_id = await planning.create_route_run(
            conn,
            tenant.id,
            planning.NewRouteRun(
                vehicle_id=vehicle_id,
                local_date=dt.date(2026, 12, 4),
                name="Tuyến 1",
                planned_start=T0,
                planned_end=T0 + dt.timedelta(hours=4),
                corridor_m=50,
                expected_path=((105.77, 20.97), (105.78, 20.98)),
                path_length_m=1500.0,
                source=planning.RunSource.SIMULATOR,
                stops=tuple(
                    planning.RouteStop(
                        seq=seq,
                        kind=planning.StopKind.COLLECT,
                        service_point_id=points[f"KH{seq}"],
                        lat=20.97,
                        lon=105.77,
                        path_offset_m=500.0 * seq,
                        planned_arrival=T0 + dt.timedelta(minutes=10 * seq),
                        dwell_radius_m=30,
                    )
                    for seq in (1, 2)
                ),
                crew=(planning.CrewMember(staff_id=driver_id, role=planning.CrewRole.DRIVER),),
            ),
        )
    return World(
        tenant_id=tenant.id,
        tenant_slug=slug,
        vehicle_id=vehicle_id,
        device_id=device.device.id,
        driver_id=driver_id,
        dispatcher_id=dispatcher_id,
        point_ids=(points["KH1"], points["KH2"]),
        run_id=run_id,
    )


async def open_passed_stop(
    conn: Any, tenant_id: int, device: fleet.Device, run_id: int, stop_seq: int, at: dt.datetime
) -> int:
    """An open "passed stop N" alert of ``device`` on a run, committed; its id (what the
    engine would have raised, for tests of what happens to a run's alerts)."""
    signal = AlertSignal(
        change=Change.OPENED,
        key=f"missed_stop:{run_id}:{stop_seq}",
        kind=AlertKind.MISSED_STOP,
        severity=Severity.WARNING,
        tenant_id=tenant_id,
        device_id=device.id,
        vehicle_id=device.vehicle_id,
        route_run_id=run_id,
        stop_seq=stop_seq,
        at=at,
        message=f"passed stop {stop_seq}",
    )
    [event] = await apply_signals(conn, [signal])
    await conn.commit()
    return event.alert.id
