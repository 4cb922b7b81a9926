"""Route runs as the live map draws them (stops coloured by status) and their compliance."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter

import alerts
import fleet
import planning
import reports
from api.context import Ctx, LocalDate, ObjectId, Reader
from api.live_messages import utc_text

router = APIRouter(prefix="/api/v1", tags=["routes"])


def _local_today(now: dt.datetime) -> dt.date:
    return now.astimezone(reports.LOCAL_ZONE).date()


def _opt_time(value: dt.datetime | None) -> str | None:
    return utc_text(value) if value is not None else None


@router.get("/route-runs")
async def list_route_runs(
    principal: Reader, ctx: Ctx, date: LocalDate | None = None
) -> list[dict[str, Any]]:
    """The route runs of a local date (today when not given)."""
    local_date = date or _local_today(ctx.clock.now())
    async with ctx.pool.connection() as conn:
        runs = await planning.list_route_runs(conn, principal.tenant_id, local_date)
        codes = await fleet.vehicle_codes(conn, principal.tenant_id)
    return [
        {
            "id": run.id,
            "name": run.name,
            "vehicle_id": run.vehicle_id,
            "vehicle_code": codes.get(run.vehicle_id, ""),
            "local_date": run.local_date.isoformat(),
            "planned_start": utc_text(run.planned_start),
            "planned_end": utc_text(run.planned_end),
            "status": run.status.value,
            "stops_total": len(run.stops),
            "path_length_m": round(run.path_length_m, 1),
            "bbox": _bbox(run),
        }
        for run in runs
    ]


def _bbox(run: planning.RouteRun) -> list[float]:
    """[west, south, east, north] of the run's path and stops: what "in view" tests."""
    lons = [lon for lon, _ in run.expected_path] + [stop.lon for stop in run.stops]
    lats = [lat for _, lat in run.expected_path] + [stop.lat for stop in run.stops]
    return [min(lons), min(lats), max(lons), max(lats)]


@router.get("/route-runs/{run_id}")
async def get_route_run(run_id: ObjectId, principal: Reader, ctx: Ctx) -> dict[str, Any]:
    """The run with its expected path (GeoJSON) and each stop's status now."""
    async with ctx.pool.connection() as conn:
        run = await planning.get_route_run(conn, principal.tenant_id, run_id)
        visits = await alerts.list_visits(conn, principal.tenant_id, run_id)
        missed = await alerts.list_alerts(
            conn,
            principal.tenant_id,
            kinds=[alerts.AlertKind.MISSED_STOP],
            route_run_id=run_id,
            limit=1000,
        )
    statuses = reports.stop_statuses(run, visits, missed, ctx.clock.now())
    first_visit: dict[int, dt.datetime] = {}
    for visit in visits:
        if visit.stop_seq not in first_visit or visit.arrival_at < first_visit[visit.stop_seq]:
            first_visit[visit.stop_seq] = visit.arrival_at
    return {
        "id": run.id,
        "name": run.name,
        "vehicle_id": run.vehicle_id,
        "local_date": run.local_date.isoformat(),
        "planned_start": utc_text(run.planned_start),
        "planned_end": utc_text(run.planned_end),
        "corridor_m": run.corridor_m,
        "status": run.status.value,
        "path_length_m": round(run.path_length_m, 1),
        "expected_path": {
            "type": "LineString",
            "coordinates": [list(p) for p in run.expected_path],
        },
        "crew": [{"staff_id": c.staff_id, "role": c.role.value} for c in run.crew],
        "stops": [
            {
                "seq": stop.seq,
                "kind": stop.kind.value,
                "service_point_id": stop.service_point_id,
                "lat": stop.lat,
                "lon": stop.lon,
                "planned_arrival": utc_text(stop.planned_arrival),
                "window_start": _opt_time(stop.window_start),
                "window_end": _opt_time(stop.window_end),
                "status": statuses[stop.seq].value,
                "visited_at": _opt_time(first_visit.get(stop.seq)),
            }
            for stop in run.stops
        ],
    }


@router.get("/route-runs/{run_id}/compliance")
async def compliance(run_id: ObjectId, principal: Reader, ctx: Ctx) -> dict[str, Any]:
    """Stops visited / late / probable / missed / pending, and the share of the distance
    driven inside the corridor."""
    async with ctx.pool.connection() as conn:
        report = await reports.route_compliance(conn, principal.tenant_id, run_id, ctx.clock.now())
    corridor = report.corridor
    return {
        "route_run_id": report.route_run_id,
        "vehicle_id": report.vehicle_id,
        "as_of": utc_text(report.as_of),
        "stops_total": report.collect_stop_count,
        "counts": {status.value: n for status, n in report.status_counts.items()},
        "served_share": report.served_share,
        "corridor_share": corridor.inside_share,
        "distance_total_m": round(corridor.distance_total_m, 1),
        "distance_inside_m": round(corridor.distance_inside_m, 1),
        "alerts_by_kind": {kind.value: n for kind, n in report.alert_counts.items()},
        "missed_stops": [
            {
                "seq": m.seq,
                "service_point_id": m.service_point_id,
                "lat": m.lat,
                "lon": m.lon,
                "planned_arrival": utc_text(m.planned_arrival),
            }
            for m in report.missed_stops
        ],
    }
