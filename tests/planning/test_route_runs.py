"""Route runs: values validate on construction, round-trip through PostgreSQL, and stay inside
their tenant."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from pydantic import ValidationError

import customers
import fleet
import planning
from storage import Pool

T0 = dt.datetime(2026, 12, 4, 1, 0, tzinfo=dt.UTC)


def stop(seq: int, offset_m: float, minutes: float, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "seq": seq,
        "kind": "collect",
        "service_point_id": 1,
        "lat": 20.97,
        "lon": 105.77,
        "path_offset_m": offset_m,
        "planned_arrival": T0 + dt.timedelta(minutes=minutes),
        "dwell_radius_m": 30,
    }
    return values | changes


def run(stops: list[dict[str, Any]], **changes: Any) -> planning.NewRouteRun:
    values: dict[str, Any] = {
        "vehicle_id": 1,
        "local_date": dt.date(2026, 12, 4),
        "name": "Tuyến 1",
        "planned_start": T0,
        "planned_end": T0 + dt.timedelta(hours=4),
        "corridor_m": 50,
        "expected_path": ((105.77, 20.97), (105.78, 20.98)),
        "path_length_m": 1500.0,
        "source": "simulator",
        "stops": stops,
    }
    return planning.NewRouteRun(**(values | changes))


@pytest.mark.parametrize(
    ("stops", "changes", "field"),
    [
        ([stop(1, 0, 0), stop(3, 10, 1)], {}, "stops[1].seq"),
        ([stop(1, 100, 0), stop(2, 10, 1)], {}, "stops[1].path_offset_m"),
        ([stop(1, 0, 5), stop(2, 10, 1)], {}, "stops[1].planned_arrival"),
        ([stop(1, 2000, 0)], {}, "stops[0].path_offset_m"),
        ([], {"planned_end": T0 - dt.timedelta(minutes=1)}, "planned_end"),
        ([], {"expected_path": ((20.97, 105.77), (20.98, 105.78))}, "expected_path"),
        ([stop(1, 0, 0, service_point_id=None)], {}, "service_point_id"),
        (
            [stop(1, 0, 0, window_start=T0, window_end=T0 - dt.timedelta(minutes=1))],
            {},
            "window_end",
        ),
        ([stop(1, 0, 0, planned_arrival=dt.datetime(2026, 12, 4, 8))], {}, "planned_arrival"),
        ([], {"corridor_m": 0}, "corridor_m"),
    ],
)
def test_bad_runs_are_refused_naming_the_field(
    stops: list[dict[str, Any]], changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        run(stops, **changes)
    assert field.split("[")[0].split(".")[-1] in str(refused.value)


async def _tenant_with_vehicle(pool: Pool) -> tuple[int, int, int]:
    async with pool.connection() as conn:
        tenant = await fleet.ensure_tenant(conn, f"t-{uuid.uuid4().hex[:8]}", "Test")
        vehicle = await fleet.ensure_vehicle(conn, tenant.id, "29C-00001", capacity_kg=500)
        points = await customers.ensure_service_points(
            conn,
            tenant.id,
            [
                customers.NewServicePoint(
                    code="KH1",
                    name="Nguyễn Văn An",
                    kind="household",
                    lat=20.97,
                    lon=105.77,
                    so_khau=4,
                )
            ],
        )
        await conn.commit()
    return tenant.id, vehicle, points["KH1"]


async def test_a_run_round_trips_and_stays_in_its_tenant(pool: Pool) -> None:
    tenant_id, vehicle_id, point_id = await _tenant_with_vehicle(pool)
    other_id, other_vehicle, _ = await _tenant_with_vehicle(pool)
    new = run(
        [
            stop(1, 0, 10, service_point_id=point_id, demand_kg=3.5, service_s=40),
            stop(
                2,
                900,
                30,
                service_point_id=point_id,
                window_start=T0,
                window_end=T0 + dt.timedelta(hours=1),
            ),
        ],
        vehicle_id=vehicle_id,
    )
    async with pool.connection() as conn:
        run_id = await planning.create_route_run(conn, tenant_id, new)
        stored = await planning.get_route_run(conn, tenant_id, run_id)
        assert stored.stops == new.stops
        assert stored.expected_path == new.expected_path
        assert stored.status is planning.RunStatus.PLANNED
        with pytest.raises(planning.NotFound):
            await planning.get_route_run(conn, other_id, run_id)
        with pytest.raises(planning.NotFound):  # another tenant's vehicle
            await planning.create_route_run(
                conn, tenant_id, new.model_copy(update={"vehicle_id": other_vehicle, "name": "x"})
            )
        with pytest.raises(planning.Conflict):
            await planning.create_route_run(conn, tenant_id, new)
        assert await planning.list_route_runs(conn, other_id, new.local_date) == []
        cancelled = await planning.cancel_planned_runs(
            conn, tenant_id, new.local_date, planning.RunSource.SIMULATOR
        )
        assert cancelled == 1
        after = await planning.get_route_run(conn, tenant_id, run_id)
        assert after.status is planning.RunStatus.CANCELLED
