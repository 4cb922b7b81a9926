"""Planning over HTTP: a dispatcher plans a depot's day (straight-line travel: the tenant
has no street map), reads it back with its task lists; other tenants see 404, accountants
cannot plan, and bad requests get 4xx naming the field."""

from __future__ import annotations

from typing import Any

import pytest

import fleet
from accounts import Role
from tests.api.conftest import ApiUnderTest, TenantWorld

DATE = "2026-12-07"
DEPOT_RING = [(20.9690, 105.7690), (20.9690, 105.7695), (20.9695, 105.7695), (20.9690, 105.7690)]


async def _ready_to_plan(api: ApiUnderTest, world: TenantWorld) -> None:
    """A depot, and the truck's capacity and driver."""
    async with api.ctx.pool.connection() as conn:
        depot = await fleet.ensure_geofence(
            conn, world.tenant_id, "Bãi xe Văn Quán", fleet.GeofenceKind.DEPOT, DEPOT_RING
        )
        await conn.execute(
            "UPDATE vehicles SET capacity_kg = 2000 WHERE id = %s", (world.vehicle_id,)
        )
        await fleet.set_truck_shift(
            conn, world.tenant_id, world.vehicle_id, depot_geofence_id=depot,
            driver_staff_id=world.driver_id,
        )  # fmt: skip
        await conn.commit()


async def _plan(api: ApiUnderTest, **body: Any) -> Any:
    response = await api.post("/api/v1/plans", json={"date": DATE, "time_limit_s": 1} | body)
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_dispatcher_plans_the_day_and_reads_it_back(api: ApiUnderTest) -> None:
    await _ready_to_plan(api, api.a)
    plan = await _plan(api)
    assert plan["matrix"] == "straight_line"
    assert plan["summary"]["served"] == 1
    assert plan["summary"]["vehicles_used"] == 1
    assert plan["unserved"] == []
    (run_id,) = plan["route_run_ids"]
    run = (await api.get(f"/api/v1/route-runs/{run_id}")).json()
    assert [s["service_point_id"] for s in run["stops"] if s["kind"] == "collect"] == [
        api.a.service_point_id
    ]
    listed = (await api.get(f"/api/v1/plans?date={DATE}", Role.ACCOUNTANT)).json()
    assert [p["id"] for p in listed] == [plan["id"]]
    tasks = (await api.get(f"/api/v1/tasks?date={DATE}")).json()
    assert [(t["staff_id"], [x["route_run_id"] for x in t["tasks"]]) for t in tasks] == [
        (api.a.driver_id, [run_id])
    ]
    assert tasks[0]["tasks"][0]["role"] == "driver"


async def test_another_tenants_plan_answers_404(api: ApiUnderTest) -> None:
    await _ready_to_plan(api, api.a)
    plan = await _plan(api)
    response = await api.client.get(f"/api/v1/plans/{plan['id']}", headers=api.b.auth())
    assert response.status_code == 404
    listed = await api.client.get(f"/api/v1/plans?date={DATE}", headers=api.b.auth())
    assert listed.json() == []
    tasks = await api.client.get(f"/api/v1/tasks?date={DATE}", headers=api.b.auth())
    assert tasks.json() == []


async def test_only_dispatchers_and_admins_plan(api: ApiUnderTest) -> None:
    await _ready_to_plan(api, api.a)
    response = await api.post(
        "/api/v1/plans", Role.ACCOUNTANT, json={"date": DATE, "time_limit_s": 1}
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/plans", {"date": "hôm nay"}, "date"),
        ("/api/v1/plans", {"date": DATE, "time_limit_s": -1}, "time_limit_s"),
        ("/api/v1/plans", {"date": DATE, "engine": "magic"}, "engine"),
        ("/api/v1/plans", {"date": DATE, "colour": "red"}, "colour"),
        ("/api/v1/plans", {"date": DATE}, "depot"),  # the tenant has no depot yet
        ("/api/v1/plans/replan", {"reason": "breakdown"}, "vehicle_id"),
        ("/api/v1/plans/replan", {"reason": "road_blocked"}, "block"),
        ("/api/v1/plans/replan", {"reason": "new_request"}, "service_point_id"),
        ("/api/v1/plans/replan", {"reason": "earthquake"}, "reason"),
        (
            "/api/v1/plans/replan",
            {"reason": "road_blocked", "block": {"lat": 95, "lon": 105}},
            "block.lat",
        ),
    ],
)
async def test_bad_requests_name_the_field(
    api: ApiUnderTest, path: str, body: dict[str, Any], field: str
) -> None:
    response = await api.post(path, json=body)
    assert response.status_code in (400, 422), response.text
    error = response.json()["error"]
    fields = [error.get("field")] + [p["field"] for p in error.get("problems", [])]
    assert field in fields, error


async def test_a_replan_with_nothing_planned_says_so(api: ApiUnderTest) -> None:
    await _ready_to_plan(api, api.a)
    response = await api.post(
        "/api/v1/plans/replan",
        json={"reason": "new_request", "service_point_id": api.a.service_point_id},
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "date"


async def test_a_truck_is_put_back_in_service_and_plans_use_it_again(api: ApiUnderTest) -> None:
    await _ready_to_plan(api, api.a)
    path = f"/api/v1/vehicles/{api.a.vehicle_id}/in-service"
    out = await api.put(path, json={"in_service": False})
    assert (out.status_code, out.json()["in_service"]) == (200, False), out.text
    assert (await api.get(f"/api/v1/vehicles/{api.a.vehicle_id}")).json()["in_service"] is False
    response = await api.post("/api/v1/plans", json={"date": DATE, "time_limit_s": 1})
    assert response.status_code == 422, response.text  # no truck left to plan with

    back = await api.put(path, json={"in_service": True})
    assert (back.status_code, back.json()["in_service"]) == (200, True), back.text
    assert (await _plan(api))["summary"]["vehicles_used"] == 1


@pytest.mark.parametrize(
    ("role", "vehicle", "body", "status"),
    [
        (Role.ACCOUNTANT, "a", {"in_service": True}, 403),
        (Role.DISPATCHER, "b", {"in_service": True}, 404),  # another company's truck
        (Role.DISPATCHER, "a", {"in_service": "yes"}, 422),
        (Role.DISPATCHER, "a", {}, 422),
        (Role.DISPATCHER, "a", {"in_service": True, "why": "fixed"}, 422),
    ],
)
async def test_putting_a_truck_back_checks_role_tenant_and_body(
    api: ApiUnderTest, role: Role, vehicle: str, body: dict[str, Any], status: int
) -> None:
    vehicle_id = (api.a if vehicle == "a" else api.b).vehicle_id
    response = await api.put(f"/api/v1/vehicles/{vehicle_id}/in-service", role, json=body)
    assert response.status_code == status, response.text
    async with api.ctx.pool.connection() as conn:
        other = await fleet.get_vehicle(conn, api.b.tenant_id, api.b.vehicle_id)
    assert other.in_service  # never changed from tenant a
