"""The customer book's operations: the only code that writes customers and service points.

Every function takes an open connection (the caller owns the transaction), the time of the
change and who makes it; every write is recorded in the audit log in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection
from pydantic import BaseModel, ValidationError

import audit
from customers import terms
from customers.errors import Conflict, InvalidValue, NotFound
from customers.geocode import Geocoder
from customers.models import (
    Area,
    Customer,
    CustomerFields,
    CustomerKind,
    NewArea,
    NewCustomer,
    NewPoint,
    NewServicePoint,
    PointFields,
    PointTermsFields,
    Position,
    PositionSource,
    Service,
    ServicePoint,
    Status,
    default_class,
)
from customers.text import search_text

# ---------------------------------------------------------------- reading

_POINT_COLUMNS = (
    "p.id, p.tenant_id, p.customer_id, p.code, c.name, c.kind, p.address, p.street, p.ward,"
    " p.area_id, p.lat, p.lon, p.position_accuracy_m, p.position_source,"
    " p.position_captured_at, p.position_needs_fix, p.customer_class, p.category, p.so_khau,"
    " p.volume_m3_per_day::float8, p.waste_kg_per_day::float8, p.volume_m3_per_month,"
    " p.weight_kg_per_month, p.container_lifts_per_month, p.contract_price_vnd, p.services,"
    " p.collector_staff_id, p.cashier_staff_id, p.route_code, p.book_order, p.status,"
    " p.status_from, p.revision"
)
_POINT_FIELDS = (
    "id", "tenant_id", "customer_id", "code", "name", "kind", "address", "street", "ward",
    "area_id", "lat", "lon", "position_accuracy_m", "position_source", "position_captured_at",
    "position_needs_fix", "customer_class", "category", "so_khau", "volume_m3_per_day",
    "waste_kg_per_day", "volume_m3_per_month", "weight_kg_per_month",
    "container_lifts_per_month", "contract_price_vnd", "services", "collector_staff_id",
    "cashier_staff_id", "route_code", "book_order", "status", "status_from", "revision",
)  # fmt: skip
SELECT_POINTS = (
    f"SELECT {_POINT_COLUMNS} FROM service_points p JOIN customers c ON c.id = p.customer_id"
)

_CUSTOMER_COLUMNS = (
    "id, code, name, kind, phones, email, tax_code, contact_name, billing_address,"
    " billing_period, billing_mode, status, status_from, revision, created_at, updated_at"
)


def point_from_row(row: Sequence[Any]) -> ServicePoint:
    values = dict(zip(_POINT_FIELDS, row, strict=True))
    values["services"] = tuple(Service(s) for s in values["services"])
    return ServicePoint.model_validate(values)


def _customer(row: Sequence[Any]) -> Customer:
    names = [c.strip() for c in _CUSTOMER_COLUMNS.split(",")]
    return Customer.model_validate(dict(zip(names, row, strict=True)))


async def get_customer(conn: AsyncConnection[Any], tenant_id: int, customer_id: int) -> Customer:
    cursor = await conn.execute(
        f"SELECT {_CUSTOMER_COLUMNS} FROM customers WHERE tenant_id = %s AND id = %s",
        (tenant_id, customer_id),
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"customer {customer_id} not found")
    return _customer(row)


async def get_point(conn: AsyncConnection[Any], tenant_id: int, point_id: int) -> ServicePoint:
    cursor = await conn.execute(
        SELECT_POINTS + " WHERE p.tenant_id = %s AND p.id = %s", (tenant_id, point_id)
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"service point {point_id} not found")
    return point_from_row(row)


async def points_of(
    conn: AsyncConnection[Any], tenant_id: int, customer_id: int
) -> list[ServicePoint]:
    cursor = await conn.execute(
        SELECT_POINTS + " WHERE p.tenant_id = %s AND p.customer_id = %s ORDER BY p.code",
        (tenant_id, customer_id),
    )
    return [point_from_row(row) for row in await cursor.fetchall()]


async def list_service_points(
    conn: AsyncConnection[Any], tenant_id: int, *, limit: int = 10_000, offset: int = 0
) -> list[ServicePoint]:
    cursor = await conn.execute(
        SELECT_POINTS + " WHERE p.tenant_id = %s ORDER BY p.code LIMIT %s OFFSET %s",
        (tenant_id, limit, offset),
    )
    return [point_from_row(row) for row in await cursor.fetchall()]


async def count_service_points(conn: AsyncConnection[Any], tenant_id: int) -> int:
    cursor = await conn.execute(
        "SELECT count(*) FROM service_points WHERE tenant_id = %s", (tenant_id,)
    )
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


# ---------------------------------------------------------------- areas


def _area(row: Sequence[Any]) -> Area:
    return Area(
        id=row[0],
        code=row[1],
        name=row[2],
        ward=row[3],
        district=row[4],
        area_group=row[5],
        collector_staff_id=row[6],
    )


_AREA_COLUMNS = "id, code, name, ward, district, area_group, collector_staff_id"


async def create_area(
    conn: AsyncConnection[Any], tenant_id: int, actor: audit.Actor, at: dt.datetime, new: NewArea
) -> Area:
    if new.collector_staff_id is not None:
        await require_staff(conn, tenant_id, "collector_staff_id", new.collector_staff_id)
    cursor = await conn.execute(
        "INSERT INTO areas (tenant_id, code, name, ward, district, area_group,"
        " collector_staff_id) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        f" ON CONFLICT (tenant_id, code) DO NOTHING RETURNING {_AREA_COLUMNS}",
        (tenant_id, new.code, new.name, new.ward, new.district, new.area_group,
         new.collector_staff_id),
    )  # fmt: skip
    row = await cursor.fetchone()
    if row is None:
        raise Conflict(f"code: the area {new.code} exists already")
    area = _area(row)
    await audit.record(
        conn, tenant_id, actor, at,
        audit.Change("area", area.id, "create", None, area.model_dump()),
    )  # fmt: skip
    return area


async def list_areas(conn: AsyncConnection[Any], tenant_id: int) -> list[Area]:
    cursor = await conn.execute(
        f"SELECT {_AREA_COLUMNS} FROM areas WHERE tenant_id = %s ORDER BY code", (tenant_id,)
    )
    return [_area(row) for row in await cursor.fetchall()]


async def get_area(conn: AsyncConnection[Any], tenant_id: int, area_id: int) -> Area:
    cursor = await conn.execute(
        f"SELECT {_AREA_COLUMNS} FROM areas WHERE tenant_id = %s AND id = %s",
        (tenant_id, area_id),
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"area {area_id} not found")
    return _area(row)


async def _area_group(conn: AsyncConnection[Any], tenant_id: int, area_id: int | None) -> str:
    if area_id is None:
        return "urban"
    try:
        return (await get_area(conn, tenant_id, area_id)).area_group
    except NotFound:
        raise InvalidValue(f"area_id: no area {area_id} in this company") from None


async def require_staff(
    conn: AsyncConnection[Any], tenant_id: int, field: str, staff_id: int
) -> None:
    cursor = await conn.execute(
        "SELECT 1 FROM staff WHERE tenant_id = %s AND id = %s", (tenant_id, staff_id)
    )
    if await cursor.fetchone() is None:
        raise InvalidValue(f"{field}: no staff member {staff_id} in this company")


# ---------------------------------------------------------------- creating


async def create_customer(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    at: dt.datetime,
    new: NewCustomer,
) -> Customer:
    """A customer and its service points, each billed from its ``valid_from``."""
    codes = [p.code for p in new.points]
    if len(set(codes)) != len(codes):
        raise InvalidValue("points: two service points have the same code")
    cursor = await conn.execute(
        "INSERT INTO customers (tenant_id, code, name, kind, phones, email, tax_code,"
        " contact_name, billing_address, billing_period, billing_mode, status_from)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (tenant_id, code) DO NOTHING RETURNING id",
        (tenant_id, new.code, new.name, str(new.kind), new.phones, new.email, new.tax_code,
         new.contact_name, new.billing_address, str(new.billing_period),
         str(new.billing_mode), min(p.valid_from for p in new.points)),
    )  # fmt: skip
    row = await cursor.fetchone()
    if row is None:
        raise Conflict(f"code: the customer {new.code} exists already")
    customer_id = int(row[0])
    customer = await get_customer(conn, tenant_id, customer_id)
    await audit.record(
        conn, tenant_id, actor, at,
        audit.Change("customer", customer_id, "create", None,
                     customer.model_dump(exclude={"created_at", "updated_at", "revision"}),
                     customer_id),
    )  # fmt: skip
    for point in new.points:
        await add_point(conn, tenant_id, actor, at, customer_id, point)
    return customer


async def add_point(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    at: dt.datetime,
    customer_id: int,
    new: NewPoint,
) -> ServicePoint:
    customer = await get_customer(conn, tenant_id, customer_id)
    area_group = await _area_group(conn, tenant_id, new.area_id)
    for field in ("collector_staff_id", "cashier_staff_id"):
        staff_id = getattr(new, field)
        if staff_id is not None:
            await require_staff(conn, tenant_id, field, staff_id)
    monthly_kg = new.weight_kg_per_month
    monthly_m3 = new.volume_m3_per_month
    cursor = await conn.execute(
        "INSERT INTO service_points (tenant_id, customer_id, code, address, street, ward,"
        " area_id, lat, lon, position_accuracy_m, position_source, position_captured_at,"
        " customer_class, category, so_khau, volume_m3_per_month, weight_kg_per_month,"
        " container_lifts_per_month, contract_price_vnd, services, collector_staff_id,"
        " cashier_staff_id, route_code, status, status_from, volume_m3_per_day,"
        " waste_kg_per_day, search_text)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
        " %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (tenant_id, code) DO NOTHING RETURNING id",
        (
            tenant_id, customer_id, new.code, new.address, new.street, new.ward, new.area_id,
            new.position.lat, new.position.lon, new.position.accuracy_m,
            str(new.position.source), at if new.position.source == PositionSource.GPS else None,
            new.customer_class, new.category, new.so_khau, monthly_m3, monthly_kg,
            new.container_lifts_per_month, new.contract_price_vnd,
            sorted({str(s) for s in new.services}), new.collector_staff_id,
            new.cashier_staff_id, new.route_code, str(new.status), new.valid_from,
            monthly_m3 / 30 if monthly_m3 is not None else None,
            monthly_kg / 30 if monthly_kg is not None else 0,
            search_text(
                customer_code=customer.code, point_code=new.code, name=customer.name,
                phones=customer.phones, address=new.address, street=new.street,
                ward=new.ward, tax_code=customer.tax_code,
            ),
        ),
    )  # fmt: skip
    row = await cursor.fetchone()
    if row is None:
        raise Conflict(f"code: the service point {new.code} exists already")
    point_id = int(row[0])
    await terms.open_terms(
        conn, tenant_id, point_id, new.valid_from,
        PointTermsFields.model_validate(new.model_dump(include=set(PointTermsFields.model_fields))),
        area_group,
    )  # fmt: skip
    point = await get_point(conn, tenant_id, point_id)
    await audit.record(
        conn, tenant_id, actor, at,
        audit.Change("service_point", point_id, "create", None, _point_record(point),
                     customer_id),
    )  # fmt: skip
    return point


def _point_record(point: ServicePoint) -> dict[str, Any]:
    return point.model_dump(exclude={"tenant_id", "name", "kind", "revision"})


async def ensure_service_points(
    conn: AsyncConnection[Any],
    tenant_id: int,
    points: Sequence[NewServicePoint],
    *,
    billed_from: dt.date | None = None,
) -> dict[str, int]:
    """Create the customers and service points whose codes are new (the simulator's city and
    scenario files); return every code's id. Existing codes are left as they are, so
    re-running a scenario changes nothing. Each point is billed from ``billed_from``, or
    from the day it is created.

    The customer takes the point's code (one point per customer: a household). Not audited:
    this is the synthetic city's bulk set-up, not a person's change.
    """
    if not points:
        return {}
    async with conn.cursor() as cursor:
        await cursor.executemany(
            "INSERT INTO customers (tenant_id, code, name, kind, phones)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (tenant_id, code) DO NOTHING",
            [
                (tenant_id, p.code, p.name, str(p.kind), [p.phone] if p.phone else [])
                for p in points
            ],
        )
        await cursor.executemany(
            "INSERT INTO service_points (tenant_id, customer_id, code, address, ward, lat, lon,"
            " position_accuracy_m, position_source, so_khau, volume_m3_per_day,"
            " waste_kg_per_day, customer_class, volume_m3_per_month, weight_kg_per_month,"
            " search_text)"
            " SELECT %s, c.id, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s"
            " FROM customers c WHERE c.tenant_id = %s AND c.code = %s"
            " ON CONFLICT (tenant_id, code) DO NOTHING",
            [
                (
                    tenant_id, p.code, p.address, p.ward, p.lat, p.lon, p.position_accuracy_m,
                    str(p.position_source), p.so_khau, p.volume_m3_per_day, p.waste_kg_per_day,
                    default_class(p.kind),
                    round(Decimal(p.volume_m3_per_day * 30), 3)
                    if p.volume_m3_per_day is not None else None,
                    round(Decimal(p.waste_kg_per_day * 30), 2)
                    if p.kind != CustomerKind.HOUSEHOLD else None,
                    search_text(customer_code=p.code, point_code=p.code, name=p.name,
                                phones=[p.phone] if p.phone else [], address=p.address,
                                ward=p.ward),
                    tenant_id, p.code,
                )
                for p in points
            ],
        )  # fmt: skip
        # First terms for the points that have none: billed from the day they were made.
        await cursor.execute(
            "INSERT INTO service_point_terms (tenant_id, service_point_id, valid_from, status,"
            " customer_class, area_group, so_khau, volume_m3_per_month, weight_kg_per_month,"
            " services)"
            " SELECT p.tenant_id, p.id, coalesce(%s, p.created_at::date), p.status,"
            " p.customer_class, 'urban', p.so_khau, p.volume_m3_per_month,"
            " p.weight_kg_per_month, p.services"
            " FROM service_points p WHERE p.tenant_id = %s AND p.code = ANY(%s)"
            " AND NOT EXISTS (SELECT 1 FROM service_point_terms t"
            "                 WHERE t.service_point_id = p.id)",
            (billed_from, tenant_id, [p.code for p in points]),
        )
        await cursor.execute(
            "SELECT code, id FROM service_points WHERE tenant_id = %s AND code = ANY(%s)",
            (tenant_id, [p.code for p in points]),
        )
        return {code: int(point_id) for code, point_id in await cursor.fetchall()}


# ---------------------------------------------------------------- changing


def _validated(model: type[BaseModel], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``changes`` checked field by field against ``model``'s types; InvalidValue names the
    first bad field."""
    unknown = sorted(set(changes) - set(model.model_fields))
    if unknown:
        raise InvalidValue(f"{unknown[0]}: cannot be changed here")
    try:
        validated = model.model_validate(
            {
                **{
                    name: info.get_default(call_default_factory=True)
                    for name, info in model.model_fields.items()
                    if not info.is_required()
                },
                **_required_placeholders(model, changes),
                **changes,
            }
        )
    except ValidationError as error:
        first = error.errors()[0]
        raise InvalidValue(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None
    return {name: getattr(validated, name) for name in changes}


def _required_placeholders(model: type[BaseModel], changes: Mapping[str, Any]) -> dict[str, Any]:
    # Required fields not being changed get a valid stand-in so the model validates; only
    # the changed fields are read back.
    stand_ins: dict[str, Any] = {"name": "x", "kind": CustomerKind.HOUSEHOLD}
    return {
        name: stand_ins[name]
        for name, info in model.model_fields.items()
        if info.is_required() and name not in changes
    }


async def _refresh_search_text(
    conn: AsyncConnection[Any], tenant_id: int, customer_id: int
) -> None:
    customer = await get_customer(conn, tenant_id, customer_id)
    for point in await points_of(conn, tenant_id, customer_id):
        await conn.execute(
            "UPDATE service_points SET search_text = %s WHERE id = %s",
            (
                search_text(
                    customer_code=customer.code, point_code=point.code, name=customer.name,
                    phones=customer.phones, address=point.address, street=point.street,
                    ward=point.ward, tax_code=customer.tax_code,
                ),
                point.id,
            ),
        )  # fmt: skip


def _check_revision(kind: str, current: int, expected: int | None) -> None:
    if expected is not None and expected != current:
        raise Conflict(
            f"revision: the {kind} was changed by someone else (revision {current}, you had"
            f" {expected}); reload it and try again"
        )


async def update_customer(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    at: dt.datetime,
    customer_id: int,
    changes: Mapping[str, Any],
    *,
    expected_revision: int | None = None,
) -> Customer:
    """Change a customer's own fields (``CustomerFields``); audited."""
    values = _validated(CustomerFields, changes)
    await conn.execute(
        "SELECT 1 FROM customers WHERE tenant_id = %s AND id = %s FOR UPDATE",
        (tenant_id, customer_id),
    )
    before = await get_customer(conn, tenant_id, customer_id)
    _check_revision("customer", before.revision, expected_revision)
    changed = {k: v for k, v in values.items() if getattr(before, k) != v}
    if not changed:
        return before
    assignments = ", ".join(f"{field} = %s" for field in changed)
    await conn.execute(
        f"UPDATE customers SET {assignments}, revision = revision + 1, updated_at = %s"
        " WHERE tenant_id = %s AND id = %s",
        [*(_db(v) for v in changed.values()), at, tenant_id, customer_id],
    )
    if changed.keys() & {"name", "phones", "tax_code"}:
        await _refresh_search_text(conn, tenant_id, customer_id)
    await audit.record(
        conn, tenant_id, actor, at,
        audit.Change("customer", customer_id, "update",
                     {k: getattr(before, k) for k in changed}, changed, customer_id),
    )  # fmt: skip
    return await get_customer(conn, tenant_id, customer_id)


def _db(value: Any) -> Any:
    if isinstance(value, list):
        return [_db(v) for v in value]
    if isinstance(value, enum_types):
        return str(value)
    return value


enum_types = (CustomerKind, Status, Service, PositionSource)


async def _lock_point(conn: AsyncConnection[Any], tenant_id: int, point_id: int) -> ServicePoint:
    await conn.execute(
        "SELECT 1 FROM service_points WHERE tenant_id = %s AND id = %s FOR UPDATE",
        (tenant_id, point_id),
    )
    return await get_point(conn, tenant_id, point_id)


async def update_point(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    at: dt.datetime,
    point_id: int,
    changes: Mapping[str, Any],
    *,
    expected_revision: int | None = None,
    geocoder: Geocoder | None = None,
    today: dt.date | None = None,
) -> ServicePoint:
    """Change a point's place and people (``PointFields``); audited. A new address (or
    street) is geocoded from the street network when ``geocoder`` is given; when no street
    matches, the point keeps its position and is marked as needing a fix in the field.
    A new area's tariff group applies from ``today`` (the company's date; default: the date
    of ``at``)."""
    values = _validated(PointFields, changes)
    before = await _lock_point(conn, tenant_id, point_id)
    _check_revision("service point", before.revision, expected_revision)
    changed = {k: v for k, v in values.items() if getattr(before, k) != v}
    if not changed:
        return before
    for field in ("collector_staff_id", "cashier_staff_id"):
        if changed.get(field) is not None:
            await require_staff(conn, tenant_id, field, changed[field])
    updates: dict[str, Any] = dict(changed)
    if "area_id" in changed:
        group = await _area_group(conn, tenant_id, changed["area_id"])
        await terms.change_terms_from(
            conn,
            tenant_id,
            point_id,
            today or at.date(),
            {"area_group": group},
            today=today or at.date(),
        )
    if changed.keys() & {"address", "street"}:
        found = (
            await geocoder.locate(
                conn, tenant_id, changed.get("address", before.address),
                changed.get("street", before.street),
            )
            if geocoder is not None else None
        )  # fmt: skip
        if found is None:
            updates["position_needs_fix"] = True
        else:
            updates |= {
                "lat": found.lat,
                "lon": found.lon,
                "position_accuracy_m": found.accuracy_m,
                "position_source": str(PositionSource.GEOCODED),
                "position_needs_fix": False,
            }
    assignments = ", ".join(f"{field} = %s" for field in updates)
    await conn.execute(
        f"UPDATE service_points SET {assignments}, revision = revision + 1, updated_at = %s"
        " WHERE tenant_id = %s AND id = %s",
        [*(_db(v) for v in updates.values()), at, tenant_id, point_id],
    )
    if changed.keys() & {"address", "street", "ward"}:
        await _refresh_search_text(conn, tenant_id, before.customer_id)
    after = await get_point(conn, tenant_id, point_id)
    touched = set(updates)
    await audit.record(
        conn, tenant_id, actor, at,
        audit.Change("service_point", point_id, "update",
                     {k: v for k, v in _point_record(before).items() if k in touched},
                     {k: v for k, v in _point_record(after).items() if k in touched},
                     before.customer_id),
    )  # fmt: skip
    return after


async def set_position(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    at: dt.datetime,
    point_id: int,
    position: Position,
    *,
    captured_at: dt.datetime | None = None,
) -> ServicePoint:
    """Put a point on the map (the office's pin, a collector's GPS fix); audited."""
    before = await _lock_point(conn, tenant_id, point_id)
    await conn.execute(
        "UPDATE service_points SET lat = %s, lon = %s, position_accuracy_m = %s,"
        " position_source = %s, position_captured_at = %s, position_needs_fix = false,"
        " revision = revision + 1, updated_at = %s WHERE tenant_id = %s AND id = %s",
        (position.lat, position.lon, position.accuracy_m, str(position.source),
         captured_at, at, tenant_id, point_id),
    )  # fmt: skip
    fields = ("lat", "lon", "position_accuracy_m", "position_source", "position_needs_fix")
    after = await get_point(conn, tenant_id, point_id)
    await audit.record(
        conn, tenant_id, actor, at,
        audit.Change("service_point", point_id, "set_position",
                     {f: getattr(before, f) for f in fields},
                     {f: getattr(after, f) for f in fields}, before.customer_id),
    )  # fmt: skip
    return after


async def change_terms(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    at: dt.datetime,
    point_id: int,
    effective: dt.date,
    changes: Mapping[str, Any],
    *,
    today: dt.date,
    change_request_id: int | None = None,
) -> bool:
    """Change what a point is billed on from ``effective`` (past, today or future); audited.
    True when anything changed (the caller recomputes charges from ``effective``)."""
    allowed = set(PointTermsFields.model_fields)
    values = _validated(PointTermsFields, {k: v for k, v in changes.items() if k in allowed})
    values |= {k: v for k, v in changes.items() if k not in allowed}  # area_group: checked below
    point = await get_point(conn, tenant_id, point_id)
    before = {t.valid_from: t for t in await terms.terms_of(conn, tenant_id, point_id)}
    in_force = next(
        (t for start, t in sorted(before.items(), reverse=True) if start <= effective), None
    )
    changed = await terms.change_terms_from(
        conn, tenant_id, point_id, effective, {k: _db(v) for k, v in values.items()},
        today=today, change_request_id=change_request_id,
    )  # fmt: skip
    if changed:
        await audit.record(
            conn, tenant_id, actor, at,
            audit.Change(
                "service_point", point_id, "change_terms",
                {"effective_date": effective,
                 **({k: getattr(in_force, k) for k in values} if in_force else {})},
                {"effective_date": effective, **values,
                 **({"change_request_id": change_request_id} if change_request_id else {})},
                point.customer_id,
            ),
        )  # fmt: skip
    return changed
