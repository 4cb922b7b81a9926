"""The values of a change request that its workflow (``customers.changes``), its evidence
(``customers.change_evidence``) and the notices to the customer
(``customers.change_notices``) share."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any

from customers.errors import InvalidValue


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


def check_aware(at: dt.datetime) -> None:
    """The time given to a change-request function carries its time zone."""
    if at.tzinfo is None:
        raise InvalidValue("at: the time must carry its time zone")
