"""Alerts: list and filter; acknowledge, assign and resolve as the calling person.

A person's change is announced on the alert bus in the transaction that makes it, so every
live map (in this process and others) shows it as soon as it commits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from psycopg import AsyncConnection
from pydantic import BaseModel, ConfigDict, Field

import alerts
from alerts import AlertKind, AlertState
from api.auth import Principal
from api.context import MAX_ID, Ctx, Instant, ObjectId, Operator, Reader
from api.live_messages import alert_json, visit_json

router = APIRouter(prefix="/api/v1", tags=["alerts"])


class NoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(None, max_length=2000)


class AssignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    staff_id: int = Field(ge=1, le=MAX_ID)


@router.get("/alerts")
async def list_alerts(
    principal: Reader,
    ctx: Ctx,
    state: Annotated[list[AlertState] | None, Query()] = None,
    kind: Annotated[list[AlertKind] | None, Query()] = None,
    vehicle_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    route_run_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    since: Instant | None = None,
    until: Instant | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Newest opening first; ``since`` <= opened_at < ``until``; repeat ``state`` and
    ``kind`` to ask for several."""
    async with ctx.pool.connection() as conn:
        found = await alerts.list_alerts(
            conn,
            principal.tenant_id,
            states=state,
            kinds=kind,
            vehicle_id=vehicle_id,
            route_run_id=route_run_id,
            since=since,
            until=until,
            limit=limit,
        )
    return [alert_json(a) for a in found]


@router.get("/alerts/{alert_id}")
async def get_alert(alert_id: ObjectId, principal: Reader, ctx: Ctx) -> dict[str, Any]:
    async with ctx.pool.connection() as conn:
        return alert_json(await alerts.get_alert(conn, principal.tenant_id, alert_id))


def _acting_staff(principal: Principal) -> int:
    if principal.staff_id is None:
        raise HTTPException(
            403,
            detail={
                "field": None,
                "reason": "this login is not a staff member's: log in as a person to act",
            },
        )
    return principal.staff_id


async def _announced(
    ctx: Ctx, change: Callable[[AsyncConnection[Any]], Awaitable[alerts.AlertEvent]]
) -> dict[str, Any]:
    """Make a person's change and announce it on the alert bus in the same transaction."""
    async with ctx.pool.connection() as conn, conn.transaction():
        event = await change(conn)
        await alerts.notify(conn, [event])
    return alert_json(event.alert)


@router.post("/alerts/{alert_id}/acknowledge")
async def acknowledge(
    alert_id: ObjectId, body: NoteRequest, principal: Operator, ctx: Ctx
) -> dict[str, Any]:
    staff_id = _acting_staff(principal)
    return await _announced(
        ctx,
        lambda conn: alerts.acknowledge(conn, principal.tenant_id, alert_id, staff_id, body.note),
    )


@router.post("/alerts/{alert_id}/assign")
async def assign(
    alert_id: ObjectId, body: AssignRequest, principal: Operator, ctx: Ctx
) -> dict[str, Any]:
    staff_id = _acting_staff(principal)
    return await _announced(
        ctx,
        lambda conn: alerts.assign(conn, principal.tenant_id, alert_id, body.staff_id, staff_id),
    )


@router.post("/alerts/{alert_id}/resolve")
async def resolve(
    alert_id: ObjectId, body: NoteRequest, principal: Operator, ctx: Ctx
) -> dict[str, Any]:
    staff_id = _acting_staff(principal)
    return await _announced(
        ctx,
        lambda conn: alerts.resolve(conn, principal.tenant_id, alert_id, staff_id, body.note),
    )


@router.get("/stop-visits")
async def stop_visits(
    principal: Reader,
    ctx: Ctx,
    route_run_id: Annotated[int, Query(ge=1, le=MAX_ID)],
) -> list[dict[str, Any]]:
    """The recorded visits of a route run's stops: the proof of service."""
    async with ctx.pool.connection() as conn:
        visits = await alerts.list_visits(conn, principal.tenant_id, route_run_id)
    return [visit_json(v) for v in visits]
