"""A scenario played for real: registered through the services, published to a broker by one
session per device, stored by the ingest; what landed matches what the stream says it sent."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import orjson

import alerts
import customers
import fleet
import planning
from simulator import (
    FaultKind,
    FaultRates,
    ScenarioConfig,
    TruthLog,
    build_scenario,
    play,
    register_scenario,
)
from simulator.scenario import merged_emissions
from simulator.stream import Action
from storage import Pool, count_positions
from tests.alerts.world import open_passed_stop
from tests.support import BrokerUnderTest, running_ingest, wait_for

FAULTS = FaultRates(
    wrong_route_per_vehicle_hour=0.0,
    gps_jump_share=0.0,  # the ingest's jump filter would make the count depend on neighbours
    dropout_per_device_hour=6.0,
    dropout_s=(20.0, 40.0),
    store_and_forward_per_phone_hour=6.0,
    store_and_forward_s=(20.0, 40.0),
    duplicate_share=0.03,
    out_of_order_share=0.03,
    clock_skew_device_share=0.0,
    malformed_share=0.02,
    wrong_credentials_per_device_hour=20.0,
)


def _config(tenant: str) -> ScenarioConfig:
    return ScenarioConfig(
        seed=11,
        vehicles=3,
        phones=3,
        stops_per_run=15,
        stagger_s=10,
        tenant=tenant,
        faults=FAULTS,
    )


def _epoch_s(ts: str | int) -> float:
    if isinstance(ts, str):
        return round(dt.datetime.fromisoformat(ts).timestamp(), 3)
    return ts / 1000 if ts > 10**11 else float(ts)  # epoch ms, or OwnTracks' seconds


async def _count_tenant_positions(pool: Pool, tenant_id: int) -> int:
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM positions p JOIN devices d ON d.id = p.device_id"
            " WHERE d.tenant_id = %s",
            (tenant_id,),
        )
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def test_scenario_objects_appear_through_the_services(pool: Pool) -> None:
    tenant = f"sim-{uuid.uuid4().hex[:8]}"
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    scenario = build_scenario(_config(tenant), start, 600)
    first = await register_scenario(pool, scenario)
    async with pool.connection() as conn:  # one truck of the first simulation is under way
        owner = await fleet.get_tenant(conn, tenant)
        driver, started = next(iter(first.route_run_ids.items()))
        await planning.set_run_status(conn, owner.id, started, planning.RunStatus.ACTIVE)
        truck = next(d for d in await fleet.list_devices(conn, owner.id) if d.slug == driver)
        passed = await open_passed_stop(conn, owner.id, truck, started, 1, start)
    again = await register_scenario(pool, scenario)  # the same scenario: a restarted demo
    assert set(first.secrets) == set(again.secrets)
    assert first.secrets != again.secrets  # re-registering gives devices new secrets
    async with pool.connection() as conn:
        owner = await fleet.get_tenant(conn, tenant)
        devices = await fleet.list_devices(conn, owner.id)
        assert sorted(d.slug for d in devices) == sorted(first.secrets)
        trucks = [d for d in devices if d.kind is fleet.DeviceKind.TRUCK]
        assert len(trucks) == 3
        assert all(d.vehicle_id is not None for d in trucks)
        phones = [d for d in devices if d.kind is fleet.DeviceKind.PHONE]
        assert all(d.staff_id is not None for d in phones)
        assert await customers.count_service_points(conn, owner.id) == len(scenario.points)
        points = await customers.list_service_points(conn, owner.id)
        assert {p.code for p in points} == {p.code for p in scenario.points}
        geofences = await fleet.list_geofences(conn, owner.id)
        assert {g.kind for g in geofences} == {
            fleet.GeofenceKind.DEPOT,
            fleet.GeofenceKind.TRANSFER_STATION,
            fleet.GeofenceKind.LANDFILL,
        }
        runs = await planning.list_route_runs(conn, owner.id, scenario.local_date)
    assert len(runs) == 6
    cancelled = [r for r in runs if r.status is planning.RunStatus.CANCELLED]
    assert {r.id for r in cancelled} == set(first.route_run_ids.values())
    async with pool.connection() as conn:  # the restart closed the old run's alert
        closed = await alerts.get_alert(conn, owner.id, passed)
    assert closed.resolution is alerts.Resolution.RUN_CANCELLED
    current = {r.id: r for r in runs if r.status is planning.RunStatus.PLANNED}
    assert set(current) == set(again.route_run_ids.values())
    for vehicle in scenario.vehicles:
        run = current[again.route_run_ids[vehicle.device]]
        assert len(run.stops) == len(vehicle.plan.stops)
        assert run.stops[0].planned_arrival > start
        assert run.path_length_m == vehicle.plan.path_length_m
        assert {m.role for m in run.crew} >= {planning.CrewRole.DRIVER}
        collect = [s for s in run.stops if s.kind is planning.StopKind.COLLECT]
        assert all(s.service_point_id is not None for s in collect)


async def test_played_scenario_lands_in_positions(pool: Pool, broker: BrokerUnderTest) -> None:
    tenant = f"sim-{uuid.uuid4().hex[:8]}"
    duration_s = 240.0
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=duration_s + 5)).replace(microsecond=0)
    scenario = build_scenario(_config(tenant), start, duration_s)
    # What the stream will send, read offline first (the same seed gives the same bytes).
    expected_truth = TruthLog(start)
    sent_fixes: set[tuple[str, Any]] = set()
    for index, emission in merged_emissions(scenario, expected_truth):
        script = scenario.scripts[index]
        if emission.action is not Action.PUBLISH or emission.topic != script.position_topic:
            continue
        try:
            document = orjson.loads(emission.payload)
        except orjson.JSONDecodeError:
            continue
        for fix in document if isinstance(document, list) else [document]:
            if not isinstance(fix, dict) or not isinstance(fix.get("lat"), float):
                continue
            stamp = fix.get("ts", fix.get("tst"))
            if stamp is not None and fix["lat"] != 0:
                sent_fixes.add((script.slug, stamp))
    counts = expected_truth.counts
    assert counts[FaultKind.DUPLICATE] + counts[FaultKind.OUT_OF_ORDER] > 0
    assert counts[FaultKind.MALFORMED] > 0

    registered = await register_scenario(pool, scenario, route_runs=False)
    truth = TruthLog(start)
    async with running_ingest(pool, broker):
        stats = await play(
            scenario, registered.secrets, broker.host, broker.port, truth, speedup=None
        )
        stored = await wait_for(
            lambda: _count_tenant_positions(pool, registered.tenant_id), len(sent_fixes), 30
        )
    assert [(e.kind, e.device, e.start_s) for e in truth.entries] == [
        (e.kind, e.device, e.start_s) for e in expected_truth.entries
    ]
    assert stats.acked == stats.published  # every publish acknowledged: nothing lost on our side
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT reason, detail FROM dead_letters WHERE tenant_id = %s", (registered.tenant_id,)
        )
        refused = await cursor.fetchall()
        cursor = await conn.execute(
            "SELECT d.slug, p.time FROM positions p JOIN devices d ON d.id = p.device_id"
            " WHERE d.tenant_id = %s",
            (registered.tenant_id,),
        )
        landed = {(slug, round(time.timestamp(), 3)) for slug, time in await cursor.fetchall()}
    expected = {(slug, _epoch_s(ts)) for slug, ts in sent_fixes}
    missing, extra = sorted(expected - landed), sorted(landed - expected)
    assert stored == len(sent_fixes), (missing, extra, refused)
    if broker.checks_credentials:
        assert stats.bad_logins_refused == counts[FaultKind.WRONG_CREDENTIALS] > 0
        assert stats.bad_logins_accepted == 0
    assert stats.reconnects >= counts[FaultKind.DROPOUT] + counts[FaultKind.STORE_AND_FORWARD]
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM dead_letters WHERE tenant_id = %s", (registered.tenant_id,)
        )
        row = await cursor.fetchone()
        assert row is not None
        assert row[0] >= counts[FaultKind.MALFORMED]
        assert await count_positions(conn) >= stored
