"""Route planning in the API: plan a depot's day, re-plan it during the day, read plans back
with their unserved stops, and each person's task list. Dispatchers and admins plan;
accountants read."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body
from pydantic import BaseModel, ConfigDict, Field

import fleet
import planning
from api.context import Ctx, LocalDate, ObjectId, Operator, Reader
from api.live_messages import utc_text

router = APIRouter(prefix="/api/v1", tags=["planning"])


class PlanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    date: LocalDate
    depot_id: int | None = Field(None, ge=1, le=2**62)
    time_limit_s: float | None = Field(None, gt=0, le=600)
    engine: Literal["pyvrp", "ortools"] | None = None
    # each truck takes whole areas (địa bàn), workloads balanced
    by_area: bool = False
    # no truck's day much longer than the mean
    balance: bool = False


class BlockRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    radius_m: float = Field(30.0, gt=0, le=2000)
    note: str = Field("", max_length=500)
    ends_at: dt.datetime | None = None


class ReplanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: planning.ReplanReason
    depot_id: int | None = Field(None, ge=1, le=2**62)
    block: BlockRequest | None = None
    vehicle_id: int | None = Field(None, ge=1, le=2**62)
    service_point_id: int | None = Field(None, ge=1, le=2**62)


@router.post("/plans", status_code=201)
async def create_plan(
    principal: Operator, ctx: Ctx, body: Annotated[PlanRequest, Body()]
) -> dict[str, Any]:
    """Plan the date for a depot (the only depot when not given); the depot's earlier planned
    runs of that date that have not started are replaced. Takes up to the time limit."""
    async with ctx.pool.connection() as conn:
        result = await planning.plan_day(
            conn,
            principal.tenant_id,
            body.date,
            ctx.planning,
            now=ctx.clock.now(),
            depot_id=body.depot_id,
            time_limit_s=body.time_limit_s,
            engine_name=body.engine,
            created_by=principal.name,
            by_area=body.by_area,
            balance=body.balance,
        )
        record = await planning.get_plan(conn, principal.tenant_id, result.plan_id)
    return _plan(record)


@router.post("/plans/replan", status_code=201)
async def replan(
    principal: Operator, ctx: Ctx, body: Annotated[ReplanRequest, Body()]
) -> dict[str, Any]:
    """Re-plan today's remaining stops after a blocked road, a breakdown or a new request;
    the new runs go to the trucks' cmd topic and the live map."""
    now = ctx.clock.now()
    block = None
    if body.block is not None:
        block = planning.RoadBlock(
            body.block.lat, body.block.lon, body.block.radius_m, body.block.note, body.block.ends_at
        )
    event = planning.Replan(
        body.reason,
        block=block,
        vehicle_id=body.vehicle_id,
        service_point_id=body.service_point_id,
    )
    today = now.astimezone(planning.LOCAL_ZONE).date()
    async with ctx.pool.connection() as conn:
        result = await planning.replan(
            conn,
            principal.tenant_id,
            today,
            event,
            ctx.planning,
            now=now,
            depot_id=body.depot_id,
            created_by=principal.name,
        )
        record = await planning.get_plan(conn, principal.tenant_id, result.plan_id)
    return _plan(record)


@router.get("/plans")
async def list_plans(principal: Reader, ctx: Ctx, date: LocalDate) -> list[dict[str, Any]]:
    """The plans and re-plans of a date, oldest first."""
    async with ctx.pool.connection() as conn:
        records = await planning.list_plans(conn, principal.tenant_id, date)
    return [_plan(record) for record in records]


@router.get("/plans/{plan_id}")
async def get_plan(plan_id: ObjectId, principal: Reader, ctx: Ctx) -> dict[str, Any]:
    async with ctx.pool.connection() as conn:
        record = await planning.get_plan(conn, principal.tenant_id, plan_id)
    return _plan(record)


@router.get("/tasks")
async def task_lists(principal: Reader, ctx: Ctx, date: LocalDate) -> list[dict[str, Any]]:
    """Each person's task list for the date: the runs they drive or collect on."""
    async with ctx.pool.connection() as conn:
        tasks = await planning.task_lists(conn, principal.tenant_id, date)
        names = await fleet.staff_names(conn, principal.tenant_id)
        codes = await fleet.vehicle_codes(conn, principal.tenant_id)
    people: dict[int, dict[str, Any]] = {}
    for task in tasks:
        person = people.setdefault(
            task.staff_id,
            {"staff_id": task.staff_id, "name": names.get(task.staff_id, ""), "tasks": []},
        )
        person["tasks"].append(
            {
                "role": task.role,
                "route_run_id": task.route_run_id,
                "run_name": task.run_name,
                "vehicle_id": task.vehicle_id,
                "vehicle_code": codes.get(task.vehicle_id, ""),
                "status": task.status,
                "stops": task.stops,
                "planned_start": utc_text(task.planned_start),
                "planned_end": utc_text(task.planned_end),
            }
        )
    return list(people.values())


def _plan(record: planning.PlanRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "date": record.local_date.isoformat(),
        "depot_id": record.depot_geofence_id,
        "reason": record.reason,
        "replans_id": record.replans_id,
        "engine": record.engine,
        "time_limit_s": record.time_limit_s,
        "runtime_s": round(record.runtime_s, 2),
        "matrix": record.matrix,
        "summary": record.summary,
        "note": record.note,
        "created_by": record.created_by,
        "created_at": utc_text(record.created_at),
        "route_run_ids": list(record.run_ids),
        "unserved": [
            {
                "service_point_id": u.service_point_id,
                "code": u.code,
                "name": u.name,
                "reason": u.reason,
                "detail": u.detail,
            }
            for u in record.unserved
        ],
    }
