"""The customer book over HTTP: search and the customer map, customers and their service
points, field capture of positions, areas, collectors' books and the audit history. Change
requests with their evidence and decisions are in ``api.routes_change_requests``, under
the roles set here.

Who may do what:
- read the book (search, customers, points, terms, areas, the map, change requests,
  history): admin, dispatcher, accountant, cashier;
- edit customers and points, submit and cancel change requests, add evidence, move points
  in bulk and order a collector's book: admin, accountant;
- approve or reject a change request: admin, accountant, never the one who submitted it
  (four eyes, kept by ``customers.changes``);
- capture a point's position at the door: collector, cashier, driver, admin;
- a collector reads the book of their own round only, not the rest of the book.

Every write runs in one transaction with its audit entries; every query is the caller's
tenant's, so another tenant's id answers 404 like a missing one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

import audit
import customers
import fleet
from accounts import Role
from api.auth import Principal, allow
from api.context import (
    FIRST_YEAR,
    LAST_YEAR,
    MAX_ID,
    Admin,
    ApiContext,
    Ctx,
    Instant,
    LocalDate,
    ObjectId,
)
from audit.log import jsonable
from customers import changes

router = APIRouter(prefix="/api/v1", tags=["customers"])

BOOK_READERS = frozenset({Role.ADMIN, Role.DISPATCHER, Role.ACCOUNTANT, Role.CASHIER})
BOOK_EDITORS = frozenset({Role.ADMIN, Role.ACCOUNTANT})
APPROVERS = frozenset({Role.ADMIN, Role.ACCOUNTANT})
FIELD_STAFF = frozenset({Role.ADMIN, Role.COLLECTOR, Role.CASHIER, Role.DRIVER})

BookReader = Annotated[Principal, Depends(allow(BOOK_READERS))]
BookEditor = Annotated[Principal, Depends(allow(BOOK_EDITORS))]
Approver = Annotated[Principal, Depends(allow(APPROVERS))]
FieldStaff = Annotated[Principal, Depends(allow(FIELD_STAFF))]
BookOrCollector = Annotated[Principal, Depends(allow(BOOK_READERS | {Role.COLLECTOR}))]

OptionalId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
ClassQuery = Annotated[str | None, Query(pattern=r"^[a-z0-9_]{1,32}$")]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


# ---------------------------------------------------------------- bodies


class Revised(BaseModel):
    """A change to fields of a stored object, made against the revision the client saw:
    when someone changed it since, the answer is 409 and nothing changes."""

    model_config = ConfigDict(extra="forbid")

    revision: int = Field(ge=1, le=2**31 - 1, description="the revision the change was made on")
    changes: dict[str, Any] = Field(
        max_length=30, description="field -> new value; unknown or read-only fields are 422"
    )


class FieldCapture(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    accuracy_m: float = Field(ge=0, le=10_000)
    captured_at: Instant = Field(description="the phone's time of the fix")


class PointMove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    point_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(min_length=1, max_length=20_000)
    area_id: int | None = Field(None, ge=1, le=MAX_ID)
    collector_staff_id: int | None = Field(None, ge=1, le=MAX_ID)
    cashier_staff_id: int | None = Field(None, ge=1, le=MAX_ID)


class BookOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    point_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(max_length=20_000)


# ---------------------------------------------------------------- answers


def as_json(value: Any, *, leave_out: tuple[str, ...] = ("tenant_id",)) -> dict[str, Any]:
    """A domain value (a pydantic model or a dataclass) as JSON data, without its tenant
    (the caller's own, always)."""
    data: dict[str, Any] = (
        value.model_dump(mode="json")
        if isinstance(value, BaseModel)
        else jsonable(dataclasses.asdict(value))
    )
    for name in leave_out:
        data.pop(name, None)
    return data


def local_zone(ctx: ApiContext) -> zoneinfo.ZoneInfo:
    """The company's time zone (Asia/Ho_Chi_Minh unless set otherwise)."""
    return zoneinfo.ZoneInfo(ctx.customers.timezone)


def local_today(ctx: ApiContext, now: dt.datetime) -> dt.date:
    """The company's calendar day at ``now``."""
    return now.astimezone(local_zone(ctx)).date()


def geocoder(ctx: ApiContext) -> customers.StreetGeocoder:
    return customers.StreetGeocoder(house_frontage_m=ctx.customers.house_frontage_m)


# ---------------------------------------------------------------- search and customers


@router.get("/customers")
async def search(
    principal: BookReader,
    ctx: Ctx,
    q: Annotated[
        str, Query(max_length=200, description="words of a name, code, phone or address")
    ] = "",
    area_id: OptionalId = None,
    customer_class: ClassQuery = None,
    status: customers.Status | None = None,
    kind: customers.CustomerKind | None = None,
    collector_staff_id: OptionalId = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[dict[str, Any]]:
    """Service points (with their customer's id, name and kind) holding every word of ``q``,
    diacritics and case ignored ("nguyen van a" finds "Nguyễn Văn A"), in code order."""
    filters = customers.PointFilter(
        area_id=area_id,
        customer_class=customer_class,
        status=status,
        kind=kind,
        collector_staff_id=collector_staff_id,
    )
    async with ctx.pool.connection() as conn:
        found = await customers.search_points(
            conn, principal.tenant_id, q, filters=filters, limit=limit, offset=offset
        )
    return [as_json(p) for p in found]


@router.post("/customers", status_code=201)
async def create_customer(
    body: customers.NewCustomer, principal: BookEditor, ctx: Ctx
) -> dict[str, Any]:
    """A customer with its first service points, each billed from its ``valid_from``."""
    for n, point in enumerate(body.points):
        _check_year(f"points[{n}].valid_from", point.valid_from)
    async with ctx.pool.connection() as conn, conn.transaction():
        customer = await customers.create_customer(
            conn, principal.tenant_id, principal.actor, ctx.clock.now(), body
        )
        points = await customers.points_of(conn, principal.tenant_id, customer.id)
    return {**as_json(customer), "points": [as_json(p) for p in points]}


def _check_year(field: str, day: dt.date) -> None:
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise HTTPException(
            422,
            detail={"field": field, "reason": f"must be in the years {FIRST_YEAR} to {LAST_YEAR}"},
        )


@router.get("/customers/{customer_id}")
async def get_customer(customer_id: ObjectId, principal: BookReader, ctx: Ctx) -> dict[str, Any]:
    """The customer, its service points and its change requests still waiting."""
    async with ctx.pool.connection() as conn:
        customer = await customers.get_customer(conn, principal.tenant_id, customer_id)
        points = await customers.points_of(conn, principal.tenant_id, customer_id)
        waiting = await changes.list_requests(
            conn,
            principal.tenant_id,
            status=changes.RequestStatus.PENDING,
            customer_id=customer_id,
            limit=100,
            offset=0,
        )
    return {
        **as_json(customer),
        "points": [as_json(p) for p in points],
        "open_change_requests": [as_json(r) for r in waiting],
    }


@router.patch("/customers/{customer_id}")
async def update_customer(
    customer_id: ObjectId, body: Revised, principal: BookEditor, ctx: Ctx
) -> dict[str, Any]:
    """Change the customer's own fields (name, kind, phones, email, tax code, contact,
    billing address, period and mode); 409 when ``revision`` is no longer current."""
    async with ctx.pool.connection() as conn, conn.transaction():
        customer = await customers.update_customer(
            conn,
            principal.tenant_id,
            principal.actor,
            ctx.clock.now(),
            customer_id,
            body.changes,
            expected_revision=body.revision,
        )
    return as_json(customer)


@router.post("/customers/{customer_id}/points", status_code=201)
async def add_point(
    customer_id: ObjectId, body: customers.NewPoint, principal: BookEditor, ctx: Ctx
) -> dict[str, Any]:
    _check_year("valid_from", body.valid_from)
    async with ctx.pool.connection() as conn, conn.transaction():
        point = await customers.add_point(
            conn, principal.tenant_id, principal.actor, ctx.clock.now(), customer_id, body
        )
    return as_json(point)


@router.get("/customers/{customer_id}/history")
async def customer_history(
    customer_id: ObjectId,
    principal: BookReader,
    ctx: Ctx,
    limit: Limit = 200,
    before_seq: OptionalId = None,
) -> list[dict[str, Any]]:
    """The audit log of the customer, its service points and its change requests, newest
    first; ``before_seq`` pages back."""
    async with ctx.pool.connection() as conn:
        await customers.get_customer(conn, principal.tenant_id, customer_id)
        entries = await audit.history(
            conn, principal.tenant_id, customer_id=customer_id, limit=limit, before_seq=before_seq
        )
    return [as_json(e) for e in entries]


@router.get("/audit/verify")
async def verify_audit_chain(principal: Admin, ctx: Ctx) -> dict[str, Any]:
    """Recompute the company's audit chain: where it breaks (an edited, deleted or cut
    entry); ``intact`` when nowhere."""
    async with ctx.pool.connection() as conn:
        breaks = await audit.verify_chain(conn, principal.tenant_id)
    return {"intact": not breaks, "breaks": [{"seq": b.seq, "reason": b.reason} for b in breaks]}


# ---------------------------------------------------------------- service points


@router.get("/service-points/{point_id}")
async def get_point(point_id: ObjectId, principal: BookReader, ctx: Ctx) -> dict[str, Any]:
    async with ctx.pool.connection() as conn:
        return as_json(await customers.get_point(conn, principal.tenant_id, point_id))


@router.patch("/service-points/{point_id}")
async def update_point(
    point_id: ObjectId, body: Revised, principal: BookEditor, ctx: Ctx
) -> dict[str, Any]:
    """Change a point's place and people (address, street, ward, area, category, collector,
    cashier, route); a new address is placed on the street map, or marked for a collector
    to capture. What the point is billed on changes through a change request."""
    now = ctx.clock.now()
    async with ctx.pool.connection() as conn, conn.transaction():
        point = await customers.update_point(
            conn,
            principal.tenant_id,
            principal.actor,
            now,
            point_id,
            body.changes,
            expected_revision=body.revision,
            geocoder=geocoder(ctx),
            today=local_today(ctx, now),
        )
    return as_json(point)


@router.get("/service-points/{point_id}/terms")
async def point_terms(point_id: ObjectId, principal: BookReader, ctx: Ctx) -> list[dict[str, Any]]:
    """What the point was, is and will be billed on, oldest first."""
    async with ctx.pool.connection() as conn:
        await customers.get_point(conn, principal.tenant_id, point_id)
        found = await customers.terms_of(conn, principal.tenant_id, point_id)
    return [as_json(t) for t in found]


@router.post("/service-points/{point_id}/position")
async def capture_position(
    point_id: ObjectId, body: FieldCapture, principal: FieldStaff, ctx: Ctx
) -> dict[str, Any]:
    """A phone's fix at the customer's door: applied, queued as a change request for the
    office (a long move of a point placed by GPS or by hand), or kept unused (inaccurate)."""
    now = ctx.clock.now()
    async with ctx.pool.connection() as conn, conn.transaction():
        capture = await customers.capture_position(
            conn,
            principal.tenant_id,
            principal.actor,
            now,
            point_id,
            lat=body.lat,
            lon=body.lon,
            accuracy_m=body.accuracy_m,
            captured_at=body.captured_at,
            staff_id=principal.staff_id,
            rules=customers.CaptureRules(
                max_accuracy_m=ctx.customers.capture_max_accuracy_m,
                auto_apply_within_m=ctx.customers.capture_auto_apply_within_m,
            ),
            today=local_today(ctx, now),
        )
    return as_json(capture)


@router.post("/service-points/move")
async def move_points(body: PointMove, principal: BookEditor, ctx: Ctx) -> dict[str, Any]:
    """Move points to another area, collector and/or cashier; ``moved``: how many changed."""
    now = ctx.clock.now()
    async with ctx.pool.connection() as conn, conn.transaction():
        moved = await customers.move_points(
            conn,
            principal.tenant_id,
            principal.actor,
            now,
            body.point_ids,
            area_id=body.area_id,
            collector_staff_id=body.collector_staff_id,
            cashier_staff_id=body.cashier_staff_id,
            today=local_today(ctx, now),
        )
    return {"moved": moved}


# ---------------------------------------------------------------- areas and books


@router.get("/areas")
async def list_areas(principal: BookReader, ctx: Ctx) -> list[dict[str, Any]]:
    async with ctx.pool.connection() as conn:
        return [as_json(a) for a in await customers.list_areas(conn, principal.tenant_id)]


@router.post("/areas", status_code=201)
async def create_area(body: customers.NewArea, principal: BookEditor, ctx: Ctx) -> dict[str, Any]:
    async with ctx.pool.connection() as conn, conn.transaction():
        area = await customers.create_area(
            conn, principal.tenant_id, principal.actor, ctx.clock.now(), body
        )
    return as_json(area)


@router.get("/collectors/{staff_id}/book")
async def collector_book(
    staff_id: ObjectId, principal: BookOrCollector, ctx: Ctx
) -> list[dict[str, Any]]:
    """The collector's points in the order the collector walks them. A collector reads
    their own book only."""
    if principal.role is Role.COLLECTOR and principal.staff_id != staff_id:
        raise HTTPException(
            403, detail={"field": "staff_id", "reason": "a collector reads their own book only"}
        )
    async with ctx.pool.connection() as conn:
        await fleet.get_staff(conn, principal.tenant_id, staff_id)
        book = await customers.collector_book(conn, principal.tenant_id, staff_id)
    return [as_json(p) for p in book]


@router.put("/collectors/{staff_id}/book")
async def order_collector_book(
    staff_id: ObjectId, body: BookOrder, principal: BookEditor, ctx: Ctx
) -> list[dict[str, Any]]:
    """Number the collector's points in the order given: every point of the book, once."""
    async with ctx.pool.connection() as conn, conn.transaction():
        await fleet.get_staff(conn, principal.tenant_id, staff_id)
        await customers.set_book_order(
            conn, principal.tenant_id, principal.actor, ctx.clock.now(), staff_id, body.point_ids
        )
        book = await customers.collector_book(conn, principal.tenant_id, staff_id)
    return [as_json(p) for p in book]


# ---------------------------------------------------------------- the customer map


@router.get("/customer-map")
async def customer_map(
    principal: BookReader,
    ctx: Ctx,
    south: Annotated[float, Query(ge=-90, le=90)],
    west: Annotated[float, Query(ge=-180, le=180)],
    north: Annotated[float, Query(ge=-90, le=90)],
    east: Annotated[float, Query(ge=-180, le=180)],
    zoom: Annotated[int, Query(ge=0, le=22)],
    area_id: OptionalId = None,
    customer_class: ClassQuery = None,
    status: customers.Status | None = None,
    kind: customers.CustomerKind | None = None,
    collector_staff_id: OptionalId = None,
    collected_on: Annotated[
        LocalDate | None, Query(description="mark each point collected or not on this local day")
    ] = None,
) -> dict[str, Any]:
    """The points in the viewport, or clusters of them (count and centre) when there are
    too many to draw; filtered like the search."""
    if north <= south:
        raise HTTPException(422, detail={"field": "north", "reason": "must be north of south"})
    if east <= west:
        raise HTTPException(422, detail={"field": "east", "reason": "must be east of west"})
    since = until = None
    if collected_on is not None:
        since = dt.datetime.combine(collected_on, dt.time(), local_zone(ctx))
        until = since + dt.timedelta(days=1)
    async with ctx.pool.connection() as conn:
        return await customers.map_view(
            conn,
            principal.tenant_id,
            customers.Viewport(south=south, west=west, north=north, east=east, zoom=zoom),
            filters=customers.PointFilter(
                area_id=area_id,
                customer_class=customer_class,
                status=status,
                kind=kind,
                collector_staff_id=collector_staff_id,
            ),
            collected_since=since,
            collected_until=until,
        )
