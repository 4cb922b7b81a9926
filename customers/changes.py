"""Change requests (domain-billing, "Customer changes"): a change to what a customer is
billed on, to a service point or to the customer is asked for with a reason and evidence,
decided by another person, and applied from its effective date.

The flow: ``submit`` (pending) -> ``approve`` (approved; applied at once when its date has
come) or ``reject`` or ``cancel`` (by its submitter) -> ``apply_due`` (the daily sweep)
applies approved requests whose date has come. Applying goes through ``customers.service``
(so every change is validated and audited there), asks the caller to recompute the
charges when billing terms changed, and puts a notice to the customer in the outbox, all in
the caller's transaction. The files a request is decided on are in
``customers.change_evidence``, the notices' texts in ``customers.change_notices``.

A request records, per field, the value it replaces ("from") and the new one ("to"). For
billing terms "from" is the value in force on the effective date: terms are dated, so a
later change does not clash with an earlier one (``customers.terms`` keeps both). For every
other field a request is not applied over a change made since it was submitted: when the
field no longer holds "from", or when applying fails validation (a staff member removed,
an area gone), nothing of the request is applied; it stays approved with the reason in
``conflict`` and in its decision note, the sweep tries it again each day (it applies if
the field comes back to "from"), and a person may reject it to close it.

Every function takes an open connection (the caller owns the transaction) and the time;
none reads a clock.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from psycopg import AsyncConnection
from psycopg import errors as pg_errors
from psycopg.types.json import Jsonb
from pydantic import BaseModel, TypeAdapter, ValidationError

import audit
from audit.log import jsonable
from customers import terms

# Named here too, where the API, the worker and the tests have always found them.
from customers.change_evidence import MAX_EVIDENCE_BYTES as MAX_EVIDENCE_BYTES
from customers.change_evidence import Evidence as Evidence
from customers.change_evidence import EvidenceCorrupt as EvidenceCorrupt
from customers.change_evidence import EvidenceFile as EvidenceFile
from customers.change_evidence import add_evidence as add_evidence
from customers.change_evidence import evidence_of as evidence_of
from customers.change_evidence import get_evidence as get_evidence
from customers.change_models import ChangeRequest as ChangeRequest
from customers.change_models import RequestStatus as RequestStatus
from customers.change_models import Via as Via
from customers.change_models import check_aware
from customers.change_notices import applied_notice, notify_customer, rejected_notice
from customers.errors import Conflict, CustomersError, InvalidValue, NotFound
from customers.geocode import Geocoder
from customers.models import (
    Customer,
    CustomerFields,
    PointFields,
    PointTermsFields,
    Position,
    PositionSource,
    ServicePoint,
)
from customers.service import (
    change_terms,
    get_customer,
    get_point,
    set_position,
    update_customer,
    update_point,
)

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 2000
# Who applies what the daily sweep finds due (an approval applies as its approver).
SWEEP_ACTOR = audit.Actor("change-request sweep")


class NotAllowed(Conflict):
    """This person may not do this to the request: approve their own, cancel another's."""


# ---------------------------------------------------------------- the fields

# area_group is not asked for: it follows the point's area (area_id, a point field).
TERMS_FIELDS = tuple(f for f in terms.TERM_FIELDS if f in PointTermsFields.model_fields)
POINT_FIELDS = tuple(PointFields.model_fields)
POSITION_FIELDS = ("lat", "lon", "accuracy_m")
CUSTOMER_FIELDS = tuple(CustomerFields.model_fields)
FIELDS = (*TERMS_FIELDS, *POINT_FIELDS, *POSITION_FIELDS, *CUSTOMER_FIELDS)


def _adapter(model: type[BaseModel], name: str) -> TypeAdapter[Any]:
    """The type of ``model.name`` with its constraints, to validate one value."""
    info = model.model_fields[name]
    annotation: Any = (
        Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
    )
    return TypeAdapter(annotation)


_ADAPTERS: dict[str, TypeAdapter[Any]] = {
    **{f: _adapter(PointTermsFields, f) for f in TERMS_FIELDS},
    **{f: _adapter(PointFields, f) for f in POINT_FIELDS},
    **{f: _adapter(Position, f) for f in POSITION_FIELDS},
    **{f: _adapter(CustomerFields, f) for f in CUSTOMER_FIELDS},
}


def _validate(field: str, value: Any) -> Any:
    try:
        typed = _ADAPTERS[field].validate_python(value)
    except ValidationError as error:
        first = error.errors()[0]
        where = "".join(f"[{p}]" for p in first["loc"])
        raise InvalidValue(f"{field}{where}: {first['msg']}, got {value!r:.80}") from None
    if field == "services":
        typed = sorted(set(typed))
    return typed


def _comparable(field: str, value: Any) -> Any:
    if field == "services":
        return sorted({str(s) for s in value or ()})
    if isinstance(value, list | tuple):
        return [_comparable("", v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value


# ---------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class Applied:
    """What applying a request came to: applied (``conflict`` None), or nothing applied
    and the request still approved, with the reason in ``conflict``."""

    request: ChangeRequest  # as it stands afterwards
    terms_changed: bool = False
    conflict: str | None = None


class TermsChanged(Protocol):
    """Recomputes the charges of ``point_ids`` from ``since`` (billing's recompute)."""

    def __call__(
        self, conn: AsyncConnection[Any], tenant_id: int, point_ids: list[int], /, *, since: dt.date
    ) -> Awaitable[object]: ...


_COLUMNS = (
    "id, tenant_id, customer_id, service_point_id, submitted_by, submitted_via, submitted_at,"
    " diff, reason, effective_date, status, decided_by, decided_at, decision_note, applied_at,"
    " conflict"
)


def _request(row: Sequence[Any]) -> ChangeRequest:
    values = list(row)
    values[5] = Via(values[5])
    values[10] = RequestStatus(values[10])
    return ChangeRequest(*values)


def _text(field: str, value: str, *, min_chars: int = 0) -> str:
    if not min_chars <= len(value) <= MAX_TEXT_CHARS:
        raise InvalidValue(
            f"{field}: {len(value)} characters, allowed {min_chars} to {MAX_TEXT_CHARS}"
        )
    return value


# ---------------------------------------------------------------- reading


async def get_request(conn: AsyncConnection[Any], tenant_id: int, request_id: int) -> ChangeRequest:
    cursor = await conn.execute(
        f"SELECT {_COLUMNS} FROM change_requests WHERE tenant_id = %s AND id = %s",
        (tenant_id, request_id),
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"change request {request_id} not found")
    return _request(row)


async def _lock_request(
    conn: AsyncConnection[Any], tenant_id: int, request_id: int
) -> ChangeRequest:
    cursor = await conn.execute(
        f"SELECT {_COLUMNS} FROM change_requests WHERE tenant_id = %s AND id = %s FOR UPDATE",
        (tenant_id, request_id),
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"change request {request_id} not found")
    return _request(row)


async def list_requests(
    conn: AsyncConnection[Any],
    tenant_id: int,
    *,
    status: RequestStatus | str | None = None,
    customer_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[ChangeRequest]:
    """A tenant's requests, newest first."""
    where = ["tenant_id = %s"]
    params: list[Any] = [tenant_id]
    if status is not None:
        where.append("status = %s")
        params.append(str(RequestStatus(status)))
    if customer_id is not None:
        where.append("customer_id = %s")
        params.append(customer_id)
    cursor = await conn.execute(
        f"SELECT {_COLUMNS} FROM change_requests WHERE {' AND '.join(where)}"
        " ORDER BY submitted_at DESC, id DESC LIMIT %s OFFSET %s",
        [*params, limit, offset],
    )
    return [_request(row) for row in await cursor.fetchall()]


# ---------------------------------------------------------------- submitting


async def _current(
    conn: AsyncConnection[Any],
    tenant_id: int,
    customer: Customer,
    point: ServicePoint | None,
    fields: Sequence[str],
    effective_date: dt.date,
) -> dict[str, Any]:
    """What ``fields`` hold now; billing terms as in force on ``effective_date``."""
    values: dict[str, Any] = {}
    in_force: Any = None
    if point is not None and any(f in TERMS_FIELDS for f in fields):
        rows = await terms.terms_of(conn, tenant_id, point.id)
        in_force = next((t for t in reversed(rows) if t.valid_from <= effective_date), None)
        if in_force is None:
            first = rows[0].valid_from.isoformat() if rows else "none"
            raise InvalidValue(
                f"effective_date: {effective_date.isoformat()} is before the point's first"
                f" terms ({first})"
            )
    for field in fields:
        if field in CUSTOMER_FIELDS:
            values[field] = getattr(customer, field)
        elif field == "accuracy_m":
            values[field] = point.position_accuracy_m if point else None
        elif field in TERMS_FIELDS:
            values[field] = getattr(in_force, field)
        else:
            values[field] = getattr(point, field)
    return values


async def submit(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    at: dt.datetime,
    *,
    customer_id: int,
    service_point_id: int | None,
    changes: Mapping[str, Any],
    reason: str,
    effective_date: dt.date,
    via: Via | str,
) -> ChangeRequest:
    """Ask for ``changes`` (field -> new value) from ``effective_date``; audited.

    Billing terms, point fields and the position (``lat``, ``lon``, ``accuracy_m``) need
    ``service_point_id`` (a point of this customer); customer fields do not. Each value is
    checked as the customer book checks it; a value equal to the current one is refused.
    """
    check_aware(at)
    try:
        via = Via(via)
    except ValueError:
        raise InvalidValue(f"via: {via!r}, allowed {', '.join(v.value for v in Via)}") from None
    _text("reason", reason.strip(), min_chars=1)
    if isinstance(effective_date, dt.datetime):
        raise InvalidValue("effective_date: a calendar day, not a time")
    if not changes:
        raise InvalidValue("changes: nothing to change")
    unknown = [f for f in changes if f not in FIELDS]
    if unknown:
        raise InvalidValue(f"{unknown[0]}: not a field a change request can set")
    given = set(changes)
    if given & set(POSITION_FIELDS) and not {"lat", "lon"} <= given:
        raise InvalidValue("lat: a position is changed by lat and lon together")
    customer = await get_customer(conn, tenant_id, customer_id)
    point = None
    if service_point_id is not None:
        point = await get_point(conn, tenant_id, service_point_id)
        if point.customer_id != customer_id:
            raise InvalidValue(
                f"service_point_id: point {service_point_id} is not customer {customer_id}'s"
            )
    else:
        needs_point = [f for f in changes if f not in CUSTOMER_FIELDS]
        if needs_point:
            raise InvalidValue(f"service_point_id: required to change {needs_point[0]}")
    new = {field: _validate(field, value) for field, value in changes.items()}
    current = await _current(conn, tenant_id, customer, point, list(new), effective_date)
    same = {f for f in new if _comparable(f, new[f]) == _comparable(f, current[f])}
    # A position is one change: refused only when it moves nowhere.
    position_given = set(POSITION_FIELDS) & given
    position_unchanged = bool(position_given) and position_given <= same
    for field in new:
        if field in same and (field not in POSITION_FIELDS or position_unchanged):
            raise InvalidValue(f"{field}: is {jsonable(current[field])!r} already")
    diff = {
        f: {"from": jsonable(_comparable(f, current[f])), "to": jsonable(_comparable(f, new[f]))}
        for f in new
    }
    cursor = await conn.execute(
        "INSERT INTO change_requests (tenant_id, customer_id, service_point_id, submitted_by,"
        " submitted_via, submitted_at, diff, reason, effective_date)"
        f" VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
        (tenant_id, customer_id, service_point_id, actor.user_id, str(via), at, Jsonb(diff),
         reason.strip(), effective_date),
    )  # fmt: skip
    row = await cursor.fetchone()
    assert row is not None
    request = _request(row)
    await audit.record(
        conn, tenant_id, actor, at,
        audit.Change("change_request", request.id, "submit", None,
                     {"service_point_id": service_point_id, "diff": diff, "reason": request.reason,
                      "effective_date": effective_date, "via": via},
                     customer_id),
    )  # fmt: skip
    return request


# ---------------------------------------------------------------- deciding


async def _decide(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    at: dt.datetime,
    request: ChangeRequest,
    status: RequestStatus,
    note: str,
) -> ChangeRequest:
    decided = status is not RequestStatus.CANCELLED
    cursor = await conn.execute(
        "UPDATE change_requests SET status = %s, decided_by = %s, decided_at = %s,"
        f" decision_note = %s WHERE id = %s RETURNING {_COLUMNS}",
        (str(status), actor.user_id if decided else None, at if decided else None, note,
         request.id),
    )  # fmt: skip
    row = await cursor.fetchone()
    assert row is not None
    action = {"approved": "approve", "rejected": "reject", "cancelled": "cancel"}[status]
    await audit.record(
        conn, tenant_id, actor, at,
        audit.Change("change_request", request.id, action, {"status": request.status},
                     {"status": status, "note": note}, request.customer_id),
    )  # fmt: skip
    return _request(row)


async def approve(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    at: dt.datetime,
    request_id: int,
    note: str = "",
    *,
    today: dt.date,
    on_terms_changed: TermsChanged | None = None,
    geocoder: Geocoder | None = None,
    allow_self_approval: bool = False,
) -> ChangeRequest:
    """Approve a pending request; applied at once when its effective date is ``today`` or
    earlier (see the module for what a conflict does), else by ``apply_due`` on its day.

    Four eyes: the approver is a signed-in person other than the submitter, unless
    ``allow_self_approval`` (a company of one clerk). Which roles may approve is the API's
    business.
    """
    check_aware(at)
    _text("note", note)
    request = await _lock_request(conn, tenant_id, request_id)
    if request.status is not RequestStatus.PENDING:
        raise Conflict(f"status: the request is {request.status} already")
    if not allow_self_approval:
        if actor.user_id is None:
            raise NotAllowed("decided_by: a request is approved by a signed-in person")
        if actor.user_id == request.submitted_by:
            raise NotAllowed(
                "decided_by: a request is approved by someone other than its submitter"
            )
    request = await _decide(conn, tenant_id, actor, at, request, RequestStatus.APPROVED, note)
    if request.effective_date > today:
        return request
    outcome = await _apply(
        conn, tenant_id, actor, at, request,
        today=today, on_terms_changed=on_terms_changed, geocoder=geocoder,
    )  # fmt: skip
    return outcome.request


async def reject(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    at: dt.datetime,
    request_id: int,
    note: str = "",
) -> ChangeRequest:
    """Reject a pending request, or withdraw the approval of one blocked by a conflict;
    it never applies. The customer is told, unless the request came from the field (a
    collector's capture is the company's own business). Audited."""
    check_aware(at)
    _text("note", note)
    request = await _lock_request(conn, tenant_id, request_id)
    blocked = request.status is RequestStatus.APPROVED and request.conflict is not None
    if request.status is not RequestStatus.PENDING and not blocked:
        raise Conflict(f"status: the request is {request.status} already")
    full_note = f"{request.decision_note}\n{note}".strip() if blocked else note
    rejected = await _decide(
        conn, tenant_id, actor, at, request, RequestStatus.REJECTED,
        full_note[-MAX_TEXT_CHARS:],
    )  # fmt: skip
    if rejected.submitted_via is not Via.FIELD:
        customer = await get_customer(conn, tenant_id, rejected.customer_id)
        await notify_customer(
            conn, tenant_id, customer, rejected_notice(rejected, customer, note), at
        )
    return rejected


async def cancel(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    at: dt.datetime,
    request_id: int,
    note: str = "",
) -> ChangeRequest:
    """Withdraw a pending request; only its submitter may. Audited."""
    check_aware(at)
    _text("note", note)
    request = await _lock_request(conn, tenant_id, request_id)
    if request.status is not RequestStatus.PENDING:
        raise Conflict(f"status: the request is {request.status} already")
    if actor.user_id is None or actor.user_id != request.submitted_by:
        raise NotAllowed("submitted_by: only the person who submitted a request cancels it")
    return await _decide(conn, tenant_id, actor, at, request, RequestStatus.CANCELLED, note)


# ---------------------------------------------------------------- applying


async def apply_due(
    conn: AsyncConnection[Any],
    tenant_id: int,
    at: dt.datetime,
    *,
    today: dt.date,
    on_terms_changed: TermsChanged | None = None,
    geocoder: Geocoder | None = None,
    actor: audit.Actor = SWEEP_ACTOR,
) -> list[Applied]:
    """The daily sweep: apply the approved requests whose effective date is ``today`` or
    earlier, oldest first, each on its own (one that cannot apply does not stop the rest),
    then bring the terms in force ``today`` onto the points (``customers.terms``)."""
    check_aware(at)
    cursor = await conn.execute(
        f"SELECT {_COLUMNS} FROM change_requests WHERE tenant_id = %s AND status = 'approved'"
        " AND effective_date <= %s ORDER BY effective_date, id FOR UPDATE SKIP LOCKED",
        (tenant_id, today),
    )
    due = [_request(row) for row in await cursor.fetchall()]
    outcomes = []
    for request in due:
        outcomes.append(
            await _apply(
                conn, tenant_id, actor, at, request,
                today=today, on_terms_changed=on_terms_changed, geocoder=geocoder,
            )
        )  # fmt: skip
    await terms.sync_current(conn, tenant_id, today)
    return outcomes


async def _apply(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    at: dt.datetime,
    request: ChangeRequest,
    *,
    today: dt.date,
    on_terms_changed: TermsChanged | None,
    geocoder: Geocoder | None,
) -> Applied:
    try:
        async with conn.transaction():  # a savepoint: a conflict leaves nothing behind
            terms_changed = await _apply_fields(
                conn, tenant_id, actor, at, request, today=today, geocoder=geocoder
            )
            if terms_changed and on_terms_changed is not None:
                assert request.service_point_id is not None
                await on_terms_changed(
                    conn, tenant_id, [request.service_point_id], since=request.effective_date
                )
    except (CustomersError, pg_errors.IntegrityError, pg_errors.DataError) as error:
        reason = str(error)[:1000] or type(error).__name__
        blocked = await _record_conflict(conn, tenant_id, actor, at, request, reason)
        return Applied(blocked, conflict=reason)
    cursor = await conn.execute(
        "UPDATE change_requests SET status = 'applied', applied_at = %s, conflict = NULL"
        f" WHERE id = %s RETURNING {_COLUMNS}",
        (at, request.id),
    )
    row = await cursor.fetchone()
    assert row is not None
    applied = _request(row)
    await audit.record(
        conn, tenant_id, actor, at,
        audit.Change("change_request", request.id, "apply", {"status": request.status},
                     {"status": applied.status, "fields": list(request.diff),
                      "effective_date": request.effective_date,
                      "terms_changed": terms_changed},
                     request.customer_id),
    )  # fmt: skip
    customer = await get_customer(conn, tenant_id, request.customer_id)
    await notify_customer(conn, tenant_id, customer, applied_notice(applied, customer), at)
    return Applied(applied, terms_changed)


async def _apply_fields(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    at: dt.datetime,
    request: ChangeRequest,
    *,
    today: dt.date,
    geocoder: Geocoder | None,
) -> bool:
    """Apply every field of ``request`` or raise; True when billing terms changed."""
    to = {field: _validate(field, change["to"]) for field, change in request.diff.items()}
    # Lock what is compared, customer before point (as customers.service does).
    await conn.execute(
        "SELECT 1 FROM customers WHERE tenant_id = %s AND id = %s FOR UPDATE",
        (tenant_id, request.customer_id),
    )
    customer = await get_customer(conn, tenant_id, request.customer_id)
    point = None
    if request.service_point_id is not None:
        await conn.execute(
            "SELECT 1 FROM service_points WHERE tenant_id = %s AND id = %s FOR UPDATE",
            (tenant_id, request.service_point_id),
        )
        point = await get_point(conn, tenant_id, request.service_point_id)
    compared = [f for f in to if f not in TERMS_FIELDS]
    now = await _current(conn, tenant_id, customer, point, compared, request.effective_date)
    for field in compared:
        was = request.diff[field]["from"]
        if jsonable(_comparable(field, now[field])) != was:
            raise Conflict(
                f"{field}: was {was!r} when the request was made, is"
                f" {jsonable(_comparable(field, now[field]))!r} now"
            )
    customer_changes = {f: v for f, v in to.items() if f in CUSTOMER_FIELDS}
    point_changes = {f: v for f, v in to.items() if f in POINT_FIELDS}
    term_changes = {f: v for f, v in to.items() if f in TERMS_FIELDS}
    if customer_changes:
        await update_customer(conn, tenant_id, actor, at, request.customer_id, customer_changes)
    if point is None:
        return False
    if point_changes:
        await update_point(conn, tenant_id, actor, at, point.id, point_changes, geocoder=geocoder)
    if "lat" in to:
        from_field = request.submitted_via is Via.FIELD
        position = Position(
            lat=to["lat"],
            lon=to["lon"],
            accuracy_m=to.get("accuracy_m"),
            source=PositionSource.GPS if from_field else PositionSource.MANUAL,
        )
        await set_position(
            conn, tenant_id, actor, at, point.id, position,
            captured_at=request.submitted_at if from_field else None,
        )  # fmt: skip
    if not term_changes:
        return False
    return await change_terms(
        conn, tenant_id, actor, at, point.id, request.effective_date, term_changes,
        today=today, change_request_id=request.id,
    )  # fmt: skip


async def _record_conflict(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    at: dt.datetime,
    request: ChangeRequest,
    reason: str,
) -> ChangeRequest:
    """Keep the request approved with ``reason``; written (and audited) only when the
    reason is new, so a daily retry of the same conflict adds nothing."""
    if request.conflict == reason:
        return request
    note = f"{request.decision_note}\nNot applied: {reason}".strip()[-MAX_TEXT_CHARS:]
    cursor = await conn.execute(
        f"UPDATE change_requests SET conflict = %s, decision_note = %s WHERE id = %s"
        f" RETURNING {_COLUMNS}",
        (reason, note, request.id),
    )
    row = await cursor.fetchone()
    assert row is not None
    log.warning("change request %s not applied: %s", request.id, reason)
    await audit.record(
        conn, tenant_id, actor, at,
        audit.Change("change_request", request.id, "apply_conflict",
                     {"conflict": request.conflict}, {"conflict": reason}, request.customer_id),
    )  # fmt: skip
    return _request(row)
