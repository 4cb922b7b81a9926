"""Planning a depot's day against real PostgreSQL: the simulator's city (streets, depot,
dumps, service points, trucks) is registered, planned, stored as route runs with their
commands, re-planned after a breakdown, a blocked road and a new request; every plan passes
the feasibility checker and every due stop is served once or reported with its reason."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

import alerts
import customers
import fleet
import planning
from planning.feasibility import check
from planning.replan import path_near
from sanitrack.settings import PlanningSettings
from simulator import ScenarioConfig, build_scenario, register_scenario
from storage import Pool
from tests.alerts.world import open_passed_stop

LOCAL = dt.timezone(dt.timedelta(hours=7))
DAY = dt.date(2026, 12, 7)  # a Monday
BEFORE_SHIFT = dt.datetime(2026, 12, 7, 4, 0, tzinfo=LOCAL)
SETTINGS = PlanningSettings(time_limit_s=2.0, replan_time_limit_s=1.0)


async def _city(pool: Pool, stops: int = 12, vehicles: int = 3) -> int:
    config = ScenarioConfig(
        seed=5,
        vehicles=vehicles,
        phones=0,
        stops_per_run=stops,
        tenant=f"plan-{uuid.uuid4().hex[:8]}",
    )
    start = dt.datetime(2026, 12, 7, 5, 0, tzinfo=LOCAL)
    registered = await register_scenario(
        pool, build_scenario(config, start, 3600), route_runs=False
    )
    return registered.tenant_id


async def _runs(conn: Any, tenant_id: int) -> list[planning.RouteRun]:
    return await planning.list_route_runs(conn, tenant_id, DAY)


async def _point_ids(conn: Any, tenant_id: int) -> set[int]:
    return {p.id for p in await customers.points_due(conn, tenant_id, DAY)}


async def test_a_planned_day_serves_every_due_stop_once_along_the_streets(pool: Pool) -> None:
    tenant_id = await _city(pool)
    async with pool.connection() as conn:
        result = await planning.plan_day(conn, tenant_id, DAY, SETTINGS, now=BEFORE_SHIFT)
        assert check(result.problem, result.solution) == []
        runs = await _runs(conn, tenant_id)
        due = await _point_ids(conn, tenant_id)
        cursor = await conn.execute(
            "SELECT count(*) FROM route_commands WHERE route_run_id = ANY(%s)",
            (list(result.run_ids),),
        )
        commands = await cursor.fetchone()
    assert {run.id for run in runs} == set(result.run_ids)
    served = [s.service_point_id or 0 for run in runs for s in run.stops if s.kind == "collect"]
    assert sorted(served) == sorted(due)  # each due point once, none unserved here
    assert result.summary.served == len(due)
    for run in runs:
        # the truck empties at a dump before going home: its last stop is an unload
        assert run.stops[-1].kind == planning.StopKind.UNLOAD
        offsets = [s.path_offset_m for s in run.stops]
        assert offsets == sorted(offsets)
        assert run.path_length_m >= offsets[-1]
        assert len(run.expected_path) > len(run.stops)  # drawn along streets, not stop to stop
    assert commands is not None
    assert commands[0] == len(runs)  # one truck device per vehicle


async def test_planning_again_replaces_the_runs_that_have_not_started(pool: Pool) -> None:
    tenant_id = await _city(pool, stops=6, vehicles=2)
    async with pool.connection() as conn:
        first = await planning.plan_day(conn, tenant_id, DAY, SETTINGS, now=BEFORE_SHIFT)
        second = await planning.plan_day(conn, tenant_id, DAY, SETTINGS, now=BEFORE_SHIFT)
        runs = {run.id: run for run in await _runs(conn, tenant_id)}
    assert all(runs[i].status == planning.RunStatus.CANCELLED for i in first.run_ids)
    assert all(runs[i].status == planning.RunStatus.PLANNED for i in second.run_ids)


async def test_stops_nobody_can_serve_are_reported_one_by_one(pool: Pool) -> None:
    tenant_id = await _city(pool, stops=6, vehicles=2)
    async with pool.connection() as conn:
        points = await customers.points_due(conn, tenant_id, DAY)
        too_heavy, too_early = points[0].id, points[1].id
        await conn.execute(
            "UPDATE service_points SET waste_kg_per_day = 90000 WHERE id = %s", (too_heavy,)
        )
        # open 03:00-03:30, the trucks leave at 05:00
        await conn.execute(
            "UPDATE service_points SET window_open = '03:00', window_close = '03:30' WHERE id = %s",
            (too_early,),
        )
        result = await planning.plan_day(conn, tenant_id, DAY, SETTINGS, now=BEFORE_SHIFT)
        cursor = await conn.execute(
            "SELECT service_point_id, reason, detail FROM plan_unserved WHERE plan_id = %s",
            (result.plan_id,),
        )
        unserved = {row[0]: (row[1], row[2]) for row in await cursor.fetchall()}
    assert check(result.problem, result.solution) == []
    assert unserved[too_heavy][0] == "demand_above_capacity"
    assert unserved[too_early][0] == "window_unreachable"
    assert "03:30" in unserved[too_early][1]
    assert set(unserved) == {too_heavy, too_early}
    assert result.summary.unserved == {"demand_above_capacity": 1, "window_unreachable": 1}


async def _visit_first(conn: Any, tenant_id: int, run: planning.RouteRun, count: int) -> None:
    devices = await fleet.list_devices(conn, tenant_id)
    device = next(d for d in devices if d.vehicle_id == run.vehicle_id)
    visits = [
        alerts.StopVisit(
            tenant_id=tenant_id,
            route_run_id=run.id,
            stop_seq=stop.seq,
            vehicle_id=run.vehicle_id,
            device_id=device.id,
            service_point_id=stop.service_point_id,
            status=alerts.VisitStatus.VISITED,
            evidence=alerts.VisitEvidence.DWELL,
            arrival_at=stop.planned_arrival,
            departure_at=stop.planned_arrival + dt.timedelta(seconds=30),
            dwell_s=30.0,
            closest_m=3.0,
            lat=stop.lat,
            lon=stop.lon,
            late=False,
        )
        for stop in run.stops[:count]
    ]
    await alerts.record_visits(conn, visits)
    await conn.commit()


async def test_a_breakdown_moves_the_remaining_stops_and_keeps_visited_ones(pool: Pool) -> None:
    tenant_id = await _city(pool, stops=8, vehicles=3)
    async with pool.connection() as conn:
        plan = await planning.plan_day(conn, tenant_id, DAY, SETTINGS, now=BEFORE_SHIFT)
        runs = await _runs(conn, tenant_id)
        broken = max(runs, key=lambda r: len(r.stops))
        await _visit_first(conn, tenant_id, broken, 2)
        visited = {s.service_point_id for s in broken.stops[:2]}
        now = broken.stops[2].planned_arrival
        devices = await fleet.list_devices(conn, tenant_id)
        truck = next(d for d in devices if d.vehicle_id == broken.vehicle_id)
        passed = await open_passed_stop(conn, tenant_id, truck, broken.id, 3, now)
        event = planning.Replan(planning.ReplanReason.BREAKDOWN, vehicle_id=broken.vehicle_id)
        result = await planning.replan(conn, tenant_id, DAY, event, SETTINGS, now=now)
        after = {run.id: run for run in await _runs(conn, tenant_id)}
        passed_after = await alerts.get_alert(conn, tenant_id, passed)
        remaining_before = {
            s.service_point_id
            for run in runs
            for s in run.stops
            if s.kind == "collect" and s.service_point_id not in visited
        }
    assert check(result.problem, result.solution) == []
    new_runs = [after[i] for i in result.run_ids]
    assert broken.vehicle_id not in {run.vehicle_id for run in new_runs}
    assert after[broken.id].status == planning.RunStatus.CANCELLED
    # nobody tracks the broken truck's run any more: its alert closes with it
    assert passed_after.resolution is alerts.Resolution.RUN_CANCELLED
    served = [s.service_point_id or 0 for run in new_runs for s in run.stops if s.kind == "collect"]
    assert sorted(served) == sorted(
        p or 0 for p in remaining_before
    )  # visited stops are not planned again
    assert all(run.planned_start >= now for run in new_runs)
    assert plan.plan_id < result.plan_id


async def test_a_new_request_is_added_to_todays_routes(pool: Pool) -> None:
    tenant_id = await _city(pool, stops=6, vehicles=2)
    async with pool.connection() as conn:
        await planning.plan_day(conn, tenant_id, DAY, SETTINGS, now=BEFORE_SHIFT)
        points = await customers.points_due(conn, tenant_id, DAY)
        planned = {s.service_point_id for run in await _runs(conn, tenant_id) for s in run.stops}
        # a point not due today (collected Sundays only) whose owner calls in
        extra = points[0].id
        await conn.execute(
            "UPDATE service_points SET collection_days = '{7}' WHERE id = %s", (extra,)
        )
        await planning.plan_day(conn, tenant_id, DAY, SETTINGS, now=BEFORE_SHIFT)
        await conn.execute(
            "UPDATE service_points SET collection_days = '{1,2,3,4,5,6,7}' WHERE id = %s",
            (extra,),
        )
        await conn.commit()
        now = BEFORE_SHIFT + dt.timedelta(hours=1, minutes=30)
        event = planning.Replan(planning.ReplanReason.NEW_REQUEST, service_point_id=extra)
        result = await planning.replan(conn, tenant_id, DAY, event, SETTINGS, now=now)
        new_runs = [r for r in await _runs(conn, tenant_id) if r.id in result.run_ids]
    assert extra in planned
    served = [s.service_point_id for run in new_runs for s in run.stops]
    assert served.count(extra) == 1
    assert check(result.problem, result.solution) == []


async def test_a_blocked_road_is_not_driven_after_the_replan(pool: Pool) -> None:
    tenant_id = await _city(pool, stops=10, vehicles=2)
    async with pool.connection() as conn:
        await planning.plan_day(conn, tenant_id, DAY, SETTINGS, now=BEFORE_SHIFT)
        runs = await _runs(conn, tenant_id)
        run = runs[0]
        stop_points = {(round(s.lon, 5), round(s.lat, 5)) for s in run.stops}
        # a point in the middle of the planned path, away from the stops
        middle = len(run.expected_path) // 2
        (lon0, lat0), (lon1, lat1) = run.expected_path[middle], run.expected_path[middle + 1]
        lat, lon = (lat0 + lat1) / 2, (lon0 + lon1) / 2
        assert (round(lon, 5), round(lat, 5)) not in stop_points
        block = planning.RoadBlock(lat, lon, radius_m=5.0, note="cây đổ")
        event = planning.Replan(planning.ReplanReason.ROAD_BLOCKED, block=block)
        now = run.planned_start + dt.timedelta(minutes=1)
        result = await planning.replan(conn, tenant_id, DAY, event, SETTINGS, now=now)
        after = {r.id: r for r in await _runs(conn, tenant_id)}
        cursor = await conn.execute(
            "SELECT street_map_ids FROM road_blocks WHERE tenant_id = %s", (tenant_id,)
        )
        blocked = await cursor.fetchone()
    assert blocked is not None
    assert blocked[0]
    assert after[run.id].status == planning.RunStatus.CANCELLED
    replaced = [after[i] for i in result.run_ids if after[i].vehicle_id == run.vehicle_id]
    assert len(replaced) == 1
    assert not path_near(replaced[0], lat, lon, 5.0)


@pytest.mark.parametrize("reason", ["road_blocked", "breakdown", "new_request"])
async def test_a_replan_must_say_what_happened(pool: Pool, reason: str) -> None:
    tenant_id = await _city(pool, stops=3, vehicles=1)
    async with pool.connection() as conn:
        event = planning.Replan(planning.ReplanReason(reason))
        with pytest.raises(planning.InvalidValue):
            await planning.replan(conn, tenant_id, DAY, event, SETTINGS, now=BEFORE_SHIFT)
