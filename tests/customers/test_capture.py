"""A collector's phone records where a customer really is."""

from __future__ import annotations

import datetime as dt

import pytest

import audit
import customers
from customers import CaptureOutcome, CaptureRules, Position, PositionSource, changes
from storage import Pool
from tests.customers.book import AT, CLERK, household, make_book

COLLECTOR = audit.Actor("thugom.an", None)
RULES = CaptureRules(max_accuracy_m=50, auto_apply_within_m=30)
# ~0.0001 degrees of latitude is 11 m.
LAT, LON = 20.97, 105.77


async def _point(pool: Pool, slug: str, source: PositionSource) -> tuple[int, int]:
    book = await make_book(pool, slug)
    async with pool.connection() as conn:
        created = await customers.create_customer(
            conn, book.tenant_id, CLERK, AT, household("KH1", "Hộ A", lat=LAT, lon=LON)
        )
        point = (await customers.points_of(conn, book.tenant_id, created.id))[0]
        await customers.set_position(
            conn, book.tenant_id, CLERK, AT, point.id,
            Position(lat=LAT, lon=LON, accuracy_m=10, source=source),
        )  # fmt: skip
    return book.tenant_id, point.id


async def _capture(
    pool: Pool, tenant: int, point: int, lat: float, accuracy_m: float = 6.0
) -> customers.Capture:
    async with pool.connection() as conn:
        return await customers.capture_position(
            conn, tenant, COLLECTOR, AT, point, lat=lat, lon=LON, accuracy_m=accuracy_m,
            captured_at=AT - dt.timedelta(seconds=20), staff_id=None, rules=RULES,
        )  # fmt: skip


async def test_a_fix_at_the_door_replaces_an_imported_guess(pool: Pool) -> None:
    tenant, point = await _point(pool, "capture-a", PositionSource.IMPORT)
    capture = await _capture(pool, tenant, point, LAT + 0.003)  # 330 m off
    assert capture.outcome == CaptureOutcome.APPLIED
    assert capture.moved_m == pytest.approx(333, abs=2)
    async with pool.connection() as conn:
        moved = await customers.get_point(conn, tenant, point)
    assert (moved.lat, moved.position_source) == (LAT + 0.003, PositionSource.GPS)
    assert moved.position_captured_at == AT - dt.timedelta(seconds=20)


async def test_a_gps_point_moves_a_little_at_once_and_far_only_with_approval(pool: Pool) -> None:
    tenant, point = await _point(pool, "capture-b", PositionSource.GPS)
    near = await _capture(pool, tenant, point, LAT + 0.0002)  # 22 m
    assert near.outcome == CaptureOutcome.APPLIED
    far = await _capture(pool, tenant, point, LAT + 0.002)  # 200 m from there
    assert far.outcome == CaptureOutcome.NEEDS_APPROVAL
    assert far.change_request_id is not None
    async with pool.connection() as conn:
        assert (await customers.get_point(conn, tenant, point)).lat == LAT + 0.0002
        request = await changes.get_request(conn, tenant, far.change_request_id)
    assert request.status == changes.RequestStatus.PENDING
    assert request.diff["lat"] == {"from": LAT + 0.0002, "to": LAT + 0.002}


async def test_an_inaccurate_fix_is_kept_but_not_used(pool: Pool) -> None:
    tenant, point = await _point(pool, "capture-c", PositionSource.IMPORT)
    capture = await _capture(pool, tenant, point, LAT + 0.003, accuracy_m=120)
    assert capture.outcome == CaptureOutcome.REJECTED_ACCURACY
    async with pool.connection() as conn:
        assert (await customers.get_point(conn, tenant, point)).lat == LAT
        cursor = await conn.execute(
            "SELECT outcome, accuracy_m FROM position_captures WHERE service_point_id = %s",
            (point,),
        )
        assert await cursor.fetchall() == [("rejected_accuracy", 120.0)]


async def test_a_phone_clock_a_day_off_is_refused(pool: Pool) -> None:
    tenant, point = await _point(pool, "capture-d", PositionSource.IMPORT)
    async with pool.connection() as conn:
        with pytest.raises(customers.InvalidValue, match=r"^captured_at: "):
            await customers.capture_position(
                conn, tenant, COLLECTOR, AT, point, lat=LAT, lon=LON, accuracy_m=5,
                captured_at=AT - dt.timedelta(days=2), staff_id=None,
            )  # fmt: skip
