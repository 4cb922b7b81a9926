"""A collector's phone records where a customer's bin really is.

Every capture is kept (``position_captures``: who, where, how accurate, the phone's time
and the server's). What happens to the point depends on what it had:
- a fix less accurate than ``max_accuracy_m`` is kept but not used;
- a point placed only by import, geocoding or the simulator, or marked as needing a fix,
  takes the GPS fix at once: a fix at the door beats a guess;
- a point already placed by GPS or by hand moves at once only a short way (within
  ``auto_apply_within_m``); a longer move becomes a change request for the office to
  approve, since a wrong move sends trucks to the wrong door.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

import audit
from customers import changes
from customers.errors import InvalidValue
from customers.models import Position, PositionSource
from customers.service import get_point, set_position
from geo import haversine_m


class CaptureOutcome(enum.StrEnum):
    APPLIED = "applied"
    NEEDS_APPROVAL = "needs_approval"
    REJECTED_ACCURACY = "rejected_accuracy"


@dataclass(frozen=True, slots=True)
class CaptureRules:
    max_accuracy_m: float = 50.0
    auto_apply_within_m: float = 30.0
    max_clock_skew_s: float = 24 * 3600.0  # a phone's time further off is refused


@dataclass(frozen=True, slots=True)
class Capture:
    id: int
    outcome: CaptureOutcome
    moved_m: float
    change_request_id: int | None


TRUSTED_SOURCES = frozenset({PositionSource.GPS, PositionSource.MANUAL})


async def capture_position(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    at: dt.datetime,
    point_id: int,
    *,
    lat: float,
    lon: float,
    accuracy_m: float,
    captured_at: dt.datetime,
    staff_id: int | None,
    rules: CaptureRules = CaptureRules(),
    today: dt.date | None = None,
) -> Capture:
    """Record a phone's fix for a point and apply it, queue it for approval (effective
    ``today``, the company's date; default: the date of ``at``) or keep it unused (see the
    module's rules)."""
    position = Position(lat=lat, lon=lon, accuracy_m=accuracy_m, source=PositionSource.GPS)
    if abs((captured_at - at).total_seconds()) > rules.max_clock_skew_s:
        raise InvalidValue(
            f"captured_at: {captured_at.isoformat()} is more than"
            f" {rules.max_clock_skew_s / 3600:g} h from the server's time"
        )
    point = await get_point(conn, tenant_id, point_id)
    moved_m = haversine_m(point.lat, point.lon, position.lat, position.lon)
    request_id: int | None = None
    if accuracy_m > rules.max_accuracy_m:
        outcome = CaptureOutcome.REJECTED_ACCURACY
    elif (
        point.position_needs_fix
        or point.position_source not in TRUSTED_SOURCES
        or moved_m <= rules.auto_apply_within_m
    ):
        outcome = CaptureOutcome.APPLIED
        await set_position(conn, tenant_id, actor, at, point_id, position, captured_at=captured_at)
    else:
        outcome = CaptureOutcome.NEEDS_APPROVAL
        request = await changes.submit(
            conn,
            tenant_id,
            actor,
            at,
            customer_id=point.customer_id,
            service_point_id=point_id,
            changes={"lat": lat, "lon": lon, "accuracy_m": accuracy_m},
            reason=f"GPS tại cửa nhà: lệch {moved_m:.0f} m so với vị trí cũ",
            effective_date=today or at.date(),
            via="field",
        )
        request_id = request.id
    cursor = await conn.execute(
        "INSERT INTO position_captures (tenant_id, service_point_id, captured_by_user,"
        " staff_id, lat, lon, accuracy_m, captured_at, received_at, moved_m, outcome,"
        " change_request_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " RETURNING id",
        (tenant_id, point_id, actor.user_id, staff_id, lat, lon, accuracy_m, captured_at,
         at, moved_m, str(outcome), request_id),
    )  # fmt: skip
    row = await cursor.fetchone()
    assert row is not None
    return Capture(int(row[0]), outcome, moved_m, request_id)
