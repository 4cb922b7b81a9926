"""Change requests (domain-billing, "Customer changes"): a change to what a customer is
billed on, to a service point or to the customer is asked for with a reason and evidence,
decided by another person, and applied from its effective date.

The flow: ``submit`` (pending) -> ``approve`` (approved; applied at once when its date has
come) or ``reject`` or ``cancel`` (by its submitter) -> ``apply_due`` (the daily sweep)
applies approved requests whose date has come. Applying goes through ``customers.service``
(so every change is validated and audited there), asks the caller to recompute the
charges when billing terms changed, and puts a notice to the customer in the outbox, all in
the caller's transaction.

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
import hashlib
import logging
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Protocol

from psycopg import AsyncConnection
from psycopg import errors as pg_errors
from psycopg.types.json import Jsonb
from pydantic import BaseModel, TypeAdapter, ValidationError

import audit
import notifications
from audit.log import jsonable
from customers import terms
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

MAX_EVIDENCE_BYTES = 20 * 1024 * 1024
MAX_TEXT_CHARS = 2000
# Who applies what the daily sweep finds due (an approval applies as its approver).
SWEEP_ACTOR = audit.Actor("change-request sweep")


class RequestStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"  # waiting for its effective date, or blocked by a conflict
    REJECTED = "rejected"
    APPLIED = "applied"
    CANCELLED = "cancelled"


class Via(enum.StrEnum):
    OFFICE = "office"
    FIELD = "field"  # a collector's phone (a position captured at the door)
    CUSTOMER = "customer"


class NotAllowed(Conflict):
    """This person may not do this to the request: approve their own, cancel another's."""


class EvidenceCorrupt(CustomersError):
    """A stored evidence file no longer matches its SHA-256: it changed after upload."""


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
class ChangeRequest:
    id: int
    tenant_id: int
    customer_id: int
    service_point_id: int | None
    submitted_by: int | None
    submitted_via: Via
    submitted_at: dt.datetime
    diff: dict[str, dict[str, Any]]  # field -> {"from": value replaced, "to": new value}
    reason: str
    effective_date: dt.date
    status: RequestStatus
    decided_by: int | None
    decided_at: dt.datetime | None
    decision_note: str
    applied_at: dt.datetime | None
    conflict: str | None  # why an approved request is not applied yet


@dataclass(frozen=True, slots=True)
class Evidence:
    id: int
    tenant_id: int
    change_request_id: int
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    uploaded_by: int | None
    uploaded_at: dt.datetime


@dataclass(frozen=True, slots=True)
class EvidenceFile(Evidence):
    content: bytes = b""


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
_EVIDENCE_COLUMNS = (
    "id, tenant_id, change_request_id, filename, content_type, size_bytes, sha256,"
    " uploaded_by, uploaded_at"
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


def _aware(at: dt.datetime) -> None:
    if at.tzinfo is None:
        raise InvalidValue("at: the time must carry its time zone")


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
    _aware(at)
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


# ---------------------------------------------------------------- evidence


async def add_evidence(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    at: dt.datetime,
    request_id: int,
    filename: str,
    content_type: str,
    content: bytes,
) -> Evidence:
    """Attach a file to a pending request (what is decided on does not change after);
    the same file twice is kept once. Audited."""
    _aware(at)
    if not 1 <= len(filename) <= 255 or any(ord(c) < 32 or c in "/\\" for c in filename):
        raise InvalidValue("filename: 1 to 255 characters, without / \\ or control characters")
    if not 1 <= len(content_type) <= 100:
        raise InvalidValue("content_type: 1 to 100 characters")
    if not 1 <= len(content) <= MAX_EVIDENCE_BYTES:
        raise InvalidValue(
            f"content: {len(content)} bytes, allowed 1 to {MAX_EVIDENCE_BYTES} (20 MiB)"
        )
    cursor = await conn.execute(
        "SELECT status, customer_id FROM change_requests WHERE tenant_id = %s AND id = %s"
        " FOR SHARE",
        (tenant_id, request_id),
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"change request {request_id} not found")
    if row[0] != RequestStatus.PENDING:
        raise Conflict(
            f"status: evidence is added while a request is pending, this one is {row[0]}"
        )
    sha256 = hashlib.sha256(content).hexdigest()
    cursor = await conn.execute(
        "INSERT INTO change_request_evidence (tenant_id, change_request_id, filename,"
        " content_type, size_bytes, sha256, content, uploaded_by, uploaded_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        f" ON CONFLICT (change_request_id, sha256) DO NOTHING RETURNING {_EVIDENCE_COLUMNS}",
        (tenant_id, request_id, filename, content_type, len(content), sha256, content,
         actor.user_id, at),
    )  # fmt: skip
    inserted = await cursor.fetchone()
    if inserted is None:
        cursor = await conn.execute(
            f"SELECT {_EVIDENCE_COLUMNS} FROM change_request_evidence"
            " WHERE change_request_id = %s AND sha256 = %s",
            (request_id, sha256),
        )
        existing = await cursor.fetchone()
        assert existing is not None
        return Evidence(*existing)
    evidence = Evidence(*inserted)
    await audit.record(
        conn, tenant_id, actor, at,
        audit.Change("change_request", request_id, "add_evidence", None,
                     {"evidence_id": evidence.id, "filename": filename,
                      "content_type": content_type, "size_bytes": len(content),
                      "sha256": sha256},
                     row[1]),
    )  # fmt: skip
    return evidence


async def evidence_of(
    conn: AsyncConnection[Any], tenant_id: int, request_id: int
) -> list[Evidence]:
    """A request's files (without their content), in upload order."""
    cursor = await conn.execute(
        f"SELECT {_EVIDENCE_COLUMNS} FROM change_request_evidence"
        " WHERE tenant_id = %s AND change_request_id = %s ORDER BY id",
        (tenant_id, request_id),
    )
    return [Evidence(*row) for row in await cursor.fetchall()]


async def get_evidence(
    conn: AsyncConnection[Any], tenant_id: int, request_id: int, evidence_id: int
) -> EvidenceFile:
    """One file with its content, checked against its SHA-256 (EvidenceCorrupt if not)."""
    cursor = await conn.execute(
        f"SELECT {_EVIDENCE_COLUMNS}, content FROM change_request_evidence"
        " WHERE tenant_id = %s AND change_request_id = %s AND id = %s",
        (tenant_id, request_id, evidence_id),
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"evidence {evidence_id} of change request {request_id} not found")
    names = [c.strip() for c in _EVIDENCE_COLUMNS.split(",")]
    evidence = EvidenceFile(**dict(zip(names, row[:-1], strict=True)), content=bytes(row[-1]))
    actual = hashlib.sha256(evidence.content).hexdigest()
    if actual != evidence.sha256 or len(evidence.content) != evidence.size_bytes:
        log.error("evidence %s of change request %s fails its SHA-256", evidence_id, request_id)
        raise EvidenceCorrupt(
            f"evidence {evidence_id}: content does not match its SHA-256 {evidence.sha256}"
            f" (now {actual}): it was changed after upload"
        )
    return evidence


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
    _aware(at)
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
    _aware(at)
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
        await _notify(conn, tenant_id, customer, _rejected_notice(rejected, customer, note), at)
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
    _aware(at)
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
    _aware(at)
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
    await _notify(conn, tenant_id, customer, _applied_notice(applied, customer), at)
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


# ---------------------------------------------------------------- telling the customer

_LABELS = {
    "status": "trạng thái dịch vụ",
    "customer_class": "đối tượng tính giá",
    "so_khau": "số khẩu",
    "volume_m3_per_month": "khối lượng rác (m³/tháng)",
    "weight_kg_per_month": "khối lượng rác (kg/tháng)",
    "container_lifts_per_month": "số lần nâng thùng mỗi tháng",
    "contract_price_vnd": "giá hợp đồng",
    "services": "dịch vụ",
    "exemption_pct": "mức miễn giảm",
    "exemption_reason": "lý do miễn giảm",
    "address": "địa chỉ",
    "street": "đường phố",
    "ward": "phường/xã",
    "area_id": "địa bàn",
    "category": "loại hình",
    "collector_staff_id": "nhân viên thu gom",
    "cashier_staff_id": "nhân viên thu tiền",
    "route_code": "tuyến thu gom",
    "lat": "vị trí",
    "lon": "vị trí",
    "accuracy_m": "vị trí",
    "name": "tên khách hàng",
    "kind": "loại khách hàng",
    "phones": "số điện thoại",
    "email": "email",
    "tax_code": "mã số thuế",
    "contact_name": "người liên hệ",
    "billing_address": "địa chỉ nhận hóa đơn",
    "billing_period": "kỳ thanh toán",
    "billing_mode": "hình thức thanh toán",
}
_VALUE_LABELS = {
    "active": "đang sử dụng",
    "suspended": "tạm ngừng",
    "terminated": "chấm dứt",
    "monthly": "hàng tháng",
    "quarterly": "hàng quý",
    "yearly": "hàng năm",
    "prepaid": "trả trước",
    "postpaid": "trả sau",
    "household": "hộ gia đình",
    "business_household": "hộ kinh doanh",
    "business": "doanh nghiệp",
    "agency": "cơ quan, đơn vị",
    "collection": "thu gom rác sinh hoạt",
    "recycling": "tái chế",
    "hazardous": "chất thải nguy hại",
    "extra": "thu gom theo yêu cầu",
    "container_rental": "thuê thùng",
}
# Told with their values; the rest (staff, areas, positions, codes) by name only.
_SHOWN = {
    "status", "so_khau", "volume_m3_per_month", "weight_kg_per_month",
    "container_lifts_per_month", "contract_price_vnd", "services", "exemption_pct", "address",
    "street", "ward", "name", "kind", "phones", "email", "tax_code", "contact_name",
    "billing_address", "billing_period", "billing_mode",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Notice:
    dedupe_key: str
    subject: str
    body: str  # the email
    sms: str


def _shown(field: str, value: Any) -> str:
    if value is None or value == [] or value == "":
        return "(trống)"
    if isinstance(value, list):
        return ", ".join(_shown(field, v) for v in value)
    if field == "contract_price_vnd":
        return f"{int(value):,}".replace(",", ".") + " đồng"
    if field == "exemption_pct":
        return f"{value}%"
    if field in ("volume_m3_per_month", "weight_kg_per_month"):
        return f"{Decimal(str(value)).normalize():f}".replace(".", ",")
    return _VALUE_LABELS.get(str(value), str(value))


def _what(request: ChangeRequest) -> str:
    labels = dict.fromkeys(_LABELS.get(f, f) for f in request.diff)
    return ", ".join(labels)


def _details(request: ChangeRequest) -> list[str]:
    return [
        f"- {_LABELS[f][0].upper()}{_LABELS[f][1:]}: {_shown(f, c['from'])} → {_shown(f, c['to'])}"
        for f, c in request.diff.items()
        if f in _SHOWN
    ]


def _applied_notice(request: ChangeRequest, customer: Customer) -> _Notice:
    what = _what(request)
    day = request.effective_date.strftime("%d/%m/%Y")
    subject = f"Yêu cầu thay đổi {what} đã được áp dụng"
    lines = [
        f"Kính gửi {customer.name} (mã khách hàng {customer.code}),",
        "",
        f"Yêu cầu thay đổi {what} (mã yêu cầu {request.id}) đã được áp dụng từ ngày {day}.",
        *_details(request),
        "",
        "Các khoản phí từ ngày này được tính theo thông tin mới.",
        "Trân trọng.",
    ]
    sms = (
        f"Yêu cầu thay đổi {what} (mã {request.id}) của khách hàng {customer.code}"
        f" đã được áp dụng từ ngày {day}."
    )
    return _Notice(f"change_request:{request.id}:applied", subject, "\n".join(lines), sms)


def _rejected_notice(request: ChangeRequest, customer: Customer, note: str) -> _Notice:
    what = _what(request)
    subject = f"Yêu cầu thay đổi {what} không được chấp thuận"
    reason = f" Lý do: {note.strip()}" if note.strip() else ""
    lines = [
        f"Kính gửi {customer.name} (mã khách hàng {customer.code}),",
        "",
        f"Yêu cầu thay đổi {what} (mã yêu cầu {request.id}) không được chấp thuận.{reason}",
        "Thông tin của quý khách được giữ nguyên.",
        "",
        "Trân trọng.",
    ]
    sms = (
        f"Yêu cầu thay đổi {what} (mã {request.id}) của khách hàng {customer.code}"
        f" không được chấp thuận.{reason}"
    )
    return _Notice(f"change_request:{request.id}:rejected", subject, "\n".join(lines), sms)


async def _notify(
    conn: AsyncConnection[Any],
    tenant_id: int,
    customer: Customer,
    notice: _Notice,
    at: dt.datetime,
) -> None:
    """Email when the customer has an address, SMS to its first phone when it has one;
    a contact the outbox refuses (an old malformed number) is logged and skipped."""
    recipients = []
    if customer.email:
        recipients.append((notifications.Channel.EMAIL, customer.email, notice.body))
    if customer.phones:
        recipients.append((notifications.Channel.SMS, customer.phones[0], notice.sms))
    for channel, recipient, body in recipients:
        try:
            await notifications.enqueue(
                conn,
                tenant_id,
                customer_id=customer.id,
                channel=channel,
                recipient=recipient,
                subject=notice.subject[:300],
                body=body[:10_000],
                dedupe_key=notice.dedupe_key,
                now=at,
            )
        except notifications.InvalidNotification as error:
            log.warning("customer %s not told by %s: %s", customer.id, channel, error)
