"""Where vehicles are and were: latest positions, a vehicle's track, its day report."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, HTTPException, Query, Response

import fleet
import reports
from api.context import Ctx, Instant, LocalDate, ObjectId, Reader
from api.live_messages import LivePosition, position_json, utc_text
from storage import downsampled_track_json, latest_positions_by_device

router = APIRouter(prefix="/api/v1", tags=["positions"])

MAX_TRACK_RANGE = dt.timedelta(days=7)
# An automatic bucket keeps a drawn track near this many points.
TRACK_TARGET_POINTS = 4000


@router.get("/positions/latest")
async def latest_positions(principal: Reader, ctx: Ctx) -> Response:
    """The latest fix of every device of the tenant (from the live feed's memory when this
    process runs it, else from the database)."""
    if ctx.feed is not None:
        body = ctx.feed.latest_positions_json(principal.tenant_id)
    else:
        positions = await _stored_latest(ctx, principal.tenant_id)
        positions.sort(key=lambda p: p.device_id)
        body = orjson.dumps([position_json(p) for p in positions])
    return Response(body, media_type="application/json")


async def _stored_latest(ctx: Ctx, tenant_id: int) -> list[LivePosition]:
    async with ctx.pool.connection() as conn:
        devices = {d.id: d for d in await fleet.list_devices(conn, tenant_id)}
        rows = await latest_positions_by_device(conn, ctx.clock.now())
    return [
        LivePosition(
            tenant_id,
            device_id,
            devices[device_id].slug,
            devices[device_id].kind.value,
            devices[device_id].vehicle_id,
            devices[device_id].staff_id,
            time,
            lat,
            lon,
            speed,
            heading,
        )
        for device_id, row_tenant, time, lat, lon, speed, heading in rows
        if row_tenant == tenant_id and device_id in devices
    ]


@router.get("/vehicles/{vehicle_id}/track")
async def vehicle_track(
    vehicle_id: ObjectId,
    principal: Reader,
    ctx: Ctx,
    start: Annotated[Instant, Query(alias="from")],
    end: Annotated[Instant, Query(alias="to")],
    bucket_s: Annotated[int | None, Query(ge=0, le=86_400)] = None,
) -> Response:
    """The vehicle's track in [from, to), thinned by the database to one point per
    ``bucket_s`` (the last fix of each bucket); without ``bucket_s`` one is chosen to keep
    about 4,000 points; ``bucket_s=0`` gives every fix (at most 20,000)."""
    if end <= start:
        raise HTTPException(422, detail={"field": "to", "reason": "must be after from"})
    if end - start > MAX_TRACK_RANGE:
        raise HTTPException(422, detail={"field": "to", "reason": "at most 7 days after from"})
    if bucket_s is None:
        bucket_s = int((end - start).total_seconds() // TRACK_TARGET_POINTS)
    async with ctx.pool.connection() as conn:
        await fleet.get_vehicle(conn, principal.tenant_id, vehicle_id)
        device_ids = await fleet.vehicle_device_ids(conn, principal.tenant_id, vehicle_id)
        points = await downsampled_track_json(
            conn, principal.tenant_id, device_ids, start, end, bucket_s, ctx.positions_backend
        )
    head = orjson.dumps(
        {
            "vehicle_id": vehicle_id,
            "from": utc_text(start),
            "to": utc_text(end),
            "bucket_s": bucket_s,
        }
    )
    # The points come as JSON from PostgreSQL: no Python object per point.
    return Response(head[:-1] + b',"points":' + points + b"}", media_type="application/json")


@router.get("/vehicles/{vehicle_id}/day-report")
async def day_report(
    vehicle_id: ObjectId, principal: Reader, ctx: Ctx, date: LocalDate
) -> dict[str, Any]:
    """Trips, parkings and a summary of the vehicle's local day (Asia/Ho_Chi_Minh)."""
    async with ctx.pool.connection() as conn:
        await fleet.get_vehicle(conn, principal.tenant_id, vehicle_id)
        day = await reports.vehicle_day(conn, principal.tenant_id, vehicle_id, date)
    summary = day.summary
    return {
        "vehicle_id": vehicle_id,
        "date": date.isoformat(),
        "summary": {
            "distance_m": round(summary.distance_m, 1),
            "driving_s": round(summary.driving_s, 1),
            "stopped_s": round(summary.stopped_s, 1),
            "max_speed_kmh": summary.max_speed_kmh,
            "avg_moving_speed_kmh": summary.avg_moving_speed_kmh,
            "fix_count": summary.fix_count,
            "jump_fix_count": summary.jump_fix_count,
            "first_fix": utc_text(summary.first_fix) if summary.first_fix else None,
            "last_fix": utc_text(summary.last_fix) if summary.last_fix else None,
            "engine_s": summary.engine_s,
            "odometer_distance_m": summary.odometer_distance_m,
        },
        "trips": [
            {
                "start": utc_text(t.start_time),
                "end": utc_text(t.end_time),
                "start_lat": t.start_lat,
                "start_lon": t.start_lon,
                "end_lat": t.end_lat,
                "end_lon": t.end_lon,
                "distance_m": round(t.distance_m, 1),
                "duration_s": round(t.duration_s, 1),
                "max_speed_kmh": t.max_speed_kmh,
                "avg_speed_kmh": t.avg_speed_kmh,
            }
            for t in day.trips
        ],
        "stops": [
            {
                "start": utc_text(p.start_time),
                "end": utc_text(p.end_time),
                "duration_s": round(p.duration_s, 1),
                "lat": p.lat,
                "lon": p.lon,
                "ignition_on_share": p.ignition_on_share,
            }
            for p in day.parkings
        ],
    }
