"""Change requests: only approved changes apply, from their effective date (terms split
there), by someone other than the submitter; evidence is kept unchanged; a change made
meanwhile blocks a request instead of being overwritten; the customer is told once."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from psycopg import AsyncConnection

import accounts
import audit
import customers
import notifications
from customers import change_notices, changes
from customers.changes import RequestStatus
from storage import Pool
from tests.customers.book import AT, household, make_book

D = dt.date
TODAY = D(2026, 12, 5)


@dataclass
class World:
    tenant_id: int
    customer_id: int
    point_id: int
    clerk: audit.Actor  # submits
    approver: audit.Actor  # an accountant: decides


@dataclass
class Recompute:
    """Stands in for billing's recompute: remembers what it was asked."""

    calls: list[tuple[int, list[int], dt.date]]

    async def __call__(
        self, conn: AsyncConnection[Any], tenant_id: int, point_ids: list[int], *, since: dt.date
    ) -> None:
        self.calls.append((tenant_id, point_ids, since))


async def _user(conn: AsyncConnection[Any], tenant_id: int, name: str) -> audit.Actor:
    user = await accounts.create_user(
        conn,
        tenant_id,
        accounts.NewUser(name, name.title(), accounts.Role.ACCOUNTANT, "correct horse battery"),
    )
    return audit.Actor(name, user.id)


@pytest.fixture
async def world(pool: Pool) -> World:
    book = await make_book(pool, f"cr-{uuid.uuid4().hex[:8]}")
    async with pool.connection() as conn:
        clerk = await _user(conn, book.tenant_id, "clerk")
        approver = await _user(conn, book.tenant_id, "approver")
        new = household("KH1", "Hộ ông Nguyễn Văn An", so_khau=4, area_id=book.area_id)
        created = await customers.create_customer(
            conn, book.tenant_id, clerk, AT, new.model_copy(update={"email": "an@example.vn"})
        )
        point = (await customers.points_of(conn, book.tenant_id, created.id))[0]
    return World(book.tenant_id, created.id, point.id, clerk, approver)


async def _submit(
    conn: AsyncConnection[Any],
    world: World,
    changes_: dict[str, Any],
    effective: dt.date,
    *,
    point: bool = True,
) -> changes.ChangeRequest:
    return await changes.submit(
        conn,
        world.tenant_id,
        world.clerk,
        AT,
        customer_id=world.customer_id,
        service_point_id=world.point_id if point else None,
        changes=changes_,
        reason="Giấy xác nhận cư trú mới",
        effective_date=effective,
        via="office",
    )


def _rows(found: list[customers.Terms]) -> list[tuple[dt.date, dt.date | None, int | None]]:
    return [(t.valid_from, t.valid_to, t.so_khau) for t in found]


async def _notices(conn: AsyncConnection[Any], world: World) -> list[notifications.Notification]:
    found = await notifications.list_notifications(
        conn, world.tenant_id, customer_id=world.customer_id
    )
    return sorted(found, key=lambda n: n.channel)


async def test_a_rejected_change_never_applies(pool: Pool, world: World) -> None:
    async with pool.connection() as conn:
        request = await _submit(conn, world, {"so_khau": 6}, D(2026, 11, 1))
        assert request.status is RequestStatus.PENDING
        assert request.diff == {"so_khau": {"from": 4, "to": 6}}
        rejected = await changes.reject(
            conn, world.tenant_id, world.approver, AT, request.id, "Chưa đủ giấy tờ"
        )
        assert rejected.status is RequestStatus.REJECTED
        assert rejected.decided_by == world.approver.user_id
        assert await changes.apply_due(conn, world.tenant_id, AT, today=D(2027, 6, 1)) == []
        assert _rows(await customers.terms_of(conn, world.tenant_id, world.point_id)) == [
            (D(2026, 1, 1), None, 4)
        ]
        assert (await customers.get_point(conn, world.tenant_id, world.point_id)).so_khau == 4
        email, sms = await _notices(conn, world)
    assert (email.channel, email.recipient) == ("email", "an@example.vn")
    assert (sms.channel, sms.recipient) == ("sms", "0912345678")
    assert email.dedupe_key == sms.dedupe_key == f"change_request:{request.id}:rejected"
    assert email.subject == "Yêu cầu thay đổi số khẩu không được chấp thuận"
    assert "Lý do: Chưa đủ giấy tờ" in sms.body


async def test_a_future_change_applies_on_its_day_and_splits_the_terms(
    pool: Pool, world: World
) -> None:
    recompute = Recompute([])
    effective = D(2027, 1, 16)
    async with pool.connection() as conn:
        request = await _submit(conn, world, {"so_khau": 6}, effective)
        await changes.add_evidence(
            conn, world.tenant_id, world.clerk, AT, request.id, "ho-khau.jpg", "image/jpeg", b"JPEG"
        )
        approved = await changes.approve(
            conn, world.tenant_id, world.approver, AT, request.id, "Đủ giấy tờ",
            today=TODAY, on_terms_changed=recompute,
        )  # fmt: skip
        assert approved.status is RequestStatus.APPROVED  # its day has not come
        assert recompute.calls == []
        assert await _notices(conn, world) == []
        assert (
            await changes.apply_due(
                conn, world.tenant_id, AT, today=D(2027, 1, 15), on_terms_changed=recompute
            )
            == []
        )
        assert len(_rows(await customers.terms_of(conn, world.tenant_id, world.point_id))) == 1

        applied_at = AT + dt.timedelta(days=42)
        (outcome,) = await changes.apply_due(
            conn, world.tenant_id, applied_at, today=effective, on_terms_changed=recompute
        )
        assert outcome.conflict is None
        assert outcome.terms_changed
        assert outcome.request.status is RequestStatus.APPLIED
        assert outcome.request.applied_at == applied_at
        assert recompute.calls == [(world.tenant_id, [world.point_id], effective)]
        found = await customers.terms_of(conn, world.tenant_id, world.point_id)
        assert _rows(found) == [(D(2026, 1, 1), effective, 4), (effective, None, 6)]
        assert found[1].change_request_id == request.id
        # January is billed half on 4 people and half on 6.
        january = [
            (p.valid_from, p.valid_to, p.so_khau)
            async for batch in customers.period_terms(
                conn, world.tenant_id, D(2027, 1, 1), D(2027, 2, 1), point_ids=[world.point_id]
            )
            for p in batch
        ]
        assert january == [(D(2027, 1, 1), effective, 4), (effective, D(2027, 2, 1), 6)]
        assert (await customers.get_point(conn, world.tenant_id, world.point_id)).so_khau == 6
        # Applied once: the next sweeps find nothing.
        assert await changes.apply_due(conn, world.tenant_id, applied_at, today=effective) == []

        email, sms = await _notices(conn, world)
        actions = [
            e.action
            for e in await audit.history(
                conn, world.tenant_id, entity="change_request", entity_id=request.id
            )
        ]
        point_actions = [
            e.action
            for e in await audit.history(
                conn, world.tenant_id, entity="service_point", entity_id=world.point_id
            )
        ]
        assert await audit.verify_chain(conn, world.tenant_id) == []
    assert actions == ["apply", "approve", "add_evidence", "submit"]
    assert point_actions[0] == "change_terms"
    assert email.dedupe_key == sms.dedupe_key == f"change_request:{request.id}:applied"
    assert email.subject == "Yêu cầu thay đổi số khẩu đã được áp dụng"
    assert f"(mã yêu cầu {request.id}) đã được áp dụng từ ngày 16/01/2027." in email.body
    assert "- Số khẩu: 4 → 6" in email.body
    assert sms.body == (
        f"Yêu cầu thay đổi số khẩu (mã {request.id}) của khách hàng KH1"
        " đã được áp dụng từ ngày 16/01/2027."
    )
    assert email.created_at == applied_at


async def test_an_approval_whose_day_has_come_applies_at_once(pool: Pool, world: World) -> None:
    recompute = Recompute([])
    async with pool.connection() as conn:
        request = await _submit(
            conn, world, {"so_khau": 5, "services": ["recycling", "collection"]}, D(2026, 11, 16)
        )
        assert request.diff["services"] == {
            "from": ["collection"],
            "to": ["collection", "recycling"],
        }
        applied = await changes.approve(
            conn, world.tenant_id, world.approver, AT, request.id,
            today=TODAY, on_terms_changed=recompute,
        )  # fmt: skip
        assert applied.status is RequestStatus.APPLIED
        assert recompute.calls == [(world.tenant_id, [world.point_id], D(2026, 11, 16))]
        point = await customers.get_point(conn, world.tenant_id, world.point_id)
    assert point.so_khau == 5
    assert point.services == (customers.Service.COLLECTION, customers.Service.RECYCLING)


async def test_four_eyes(pool: Pool, world: World) -> None:
    async with pool.connection() as conn:
        request = await _submit(conn, world, {"so_khau": 6}, D(2027, 1, 1))
        for actor in (world.clerk, audit.Actor("script")):
            with pytest.raises(changes.NotAllowed, match=r"^decided_by:"):
                await changes.approve(conn, world.tenant_id, actor, AT, request.id, today=TODAY)
        assert (await changes.get_request(conn, world.tenant_id, request.id)).status == "pending"
        # A company of one clerk may allow it.
        approved = await changes.approve(
            conn, world.tenant_id, world.clerk, AT, request.id,
            today=TODAY, allow_self_approval=True,
        )  # fmt: skip
    assert approved.status is RequestStatus.APPROVED


async def test_a_request_is_decided_once(pool: Pool, world: World) -> None:
    async with pool.connection() as conn:
        first = await _submit(conn, world, {"so_khau": 6}, D(2027, 1, 1))
        await changes.approve(conn, world.tenant_id, world.approver, AT, first.id, today=TODAY)
        with pytest.raises(customers.Conflict, match="approved already"):
            await changes.approve(conn, world.tenant_id, world.approver, AT, first.id, today=TODAY)
        with pytest.raises(customers.Conflict, match="approved already"):
            await changes.reject(conn, world.tenant_id, world.approver, AT, first.id)
        with pytest.raises(customers.Conflict):
            await changes.cancel(conn, world.tenant_id, world.clerk, AT, first.id)

        second = await _submit(conn, world, {"so_khau": 7}, D(2027, 2, 1))
        with pytest.raises(changes.NotAllowed, match=r"^submitted_by:"):
            await changes.cancel(conn, world.tenant_id, world.approver, AT, second.id)
        cancelled = await changes.cancel(conn, world.tenant_id, world.clerk, AT, second.id, "Nhầm")
        assert cancelled.status is RequestStatus.CANCELLED
        with pytest.raises(customers.Conflict, match="cancelled already"):
            await changes.approve(conn, world.tenant_id, world.approver, AT, second.id, today=TODAY)
        with pytest.raises(customers.NotFound):
            await changes.approve(conn, world.tenant_id, world.approver, AT, 999_999, today=TODAY)
        (only,) = await changes.apply_due(conn, world.tenant_id, AT, today=D(2027, 3, 1))
    assert only.request.id == first.id  # the cancelled one never applies


@pytest.mark.parametrize(
    ("changes_", "point", "message"),
    [
        ({"so_khau": 0}, True, r"^so_khau: Input should be greater than or equal to 1"),
        ({"phones": ["not a phone"]}, False, r"^phones\[0\]: String should match pattern"),
        ({"colour": "red"}, True, r"^colour: not a field"),
        ({"area_group": "rural"}, True, r"^area_group: not a field"),
        ({"so_khau": 4}, True, r"^so_khau: is 4 already"),
        ({"email": "an@example.vn"}, False, r"^email: is 'an@example.vn' already"),
        ({"address": "Số 1 Quang Trung"}, False, r"^service_point_id: required"),
        ({"lat": 21.0}, True, r"^lat: a position is changed by lat and lon together"),
        ({"lat": 20.97, "lon": 105.77}, True, r"^lat: is 20.97 already"),
        ({}, True, r"^changes: nothing"),
    ],
)
async def test_bad_requests_name_the_field(
    pool: Pool, world: World, changes_: dict[str, Any], point: bool, message: str
) -> None:
    async with pool.connection() as conn:
        with pytest.raises(customers.InvalidValue, match=message):
            await _submit(conn, world, changes_, D(2027, 1, 1), point=point)


async def test_a_request_keeps_to_its_customer_and_dates(pool: Pool, world: World) -> None:
    async with pool.connection() as conn:
        other = await customers.create_customer(
            conn, world.tenant_id, world.clerk, AT, household("KH2", "Hộ bà Trần Thị Bình")
        )
        with pytest.raises(customers.InvalidValue, match=r"^service_point_id: point"):
            await changes.submit(
                conn, world.tenant_id, world.clerk, AT, customer_id=other.id,
                service_point_id=world.point_id, changes={"so_khau": 6}, reason="x",
                effective_date=D(2027, 1, 1), via="office",
            )  # fmt: skip
        with pytest.raises(customers.InvalidValue, match=r"^effective_date: 2025-12-31 is before"):
            await _submit(conn, world, {"so_khau": 6}, D(2025, 12, 31))
        with pytest.raises(customers.InvalidValue, match=r"^via:"):
            await changes.submit(
                conn, world.tenant_id, world.clerk, AT, customer_id=world.customer_id,
                service_point_id=None, changes={"name": "X"}, reason="x",
                effective_date=D(2027, 1, 1), via="telepathy",
            )  # fmt: skip


async def test_customer_point_and_position_changes_go_through_the_book(
    pool: Pool, world: World
) -> None:
    async with pool.connection() as conn:
        request = await changes.submit(
            conn, world.tenant_id, world.clerk, AT,
            customer_id=world.customer_id, service_point_id=world.point_id,
            changes={"email": "an.nguyen@example.vn", "billing_period": "quarterly",
                     "category": "nhà ở", "lat": 20.9712, "lon": 105.7791, "accuracy_m": 4},
            reason="Khách hàng đến văn phòng", effective_date=TODAY, via="field",
        )  # fmt: skip
        assert request.diff["lat"] == {"from": 20.97, "to": 20.9712}
        applied = await changes.approve(
            conn, world.tenant_id, world.approver, AT, request.id, today=TODAY
        )
        assert applied.status is RequestStatus.APPLIED
        customer = await customers.get_customer(conn, world.tenant_id, world.customer_id)
        point = await customers.get_point(conn, world.tenant_id, world.point_id)
        email, _ = await _notices(conn, world)
    assert customer.email == "an.nguyen@example.vn"
    assert customer.billing_period is customers.BillingPeriod.QUARTERLY
    assert point.category == "nhà ở"
    assert (point.lat, point.lon, point.position_accuracy_m) == (20.9712, 105.7791, 4)
    assert point.position_source is customers.PositionSource.GPS  # captured in the field
    assert email.recipient == "an.nguyen@example.vn"  # told at the address it now has
    assert "- Kỳ thanh toán: hàng tháng → hàng quý" in email.body
    assert "vị trí" in email.subject


async def test_a_change_made_meanwhile_blocks_the_request(pool: Pool, world: World) -> None:
    async with pool.connection() as conn:
        request = await _submit(conn, world, {"address": "Số 3 Quang Trung, Hà Đông"}, TODAY)
        await customers.update_point(
            conn, world.tenant_id, world.clerk, AT, world.point_id,
            {"address": "Số 5 Lê Lợi, Hà Đông"},
        )  # fmt: skip
        blocked = await changes.approve(
            conn, world.tenant_id, world.approver, AT, request.id, "OK", today=TODAY
        )
        assert blocked.status is RequestStatus.APPROVED
        assert blocked.conflict is not None
        assert blocked.conflict.startswith("address: was 'Số 12 Nguyễn Trãi, Hà Đông'")
        assert "Not applied: address:" in blocked.decision_note
        point = await customers.get_point(conn, world.tenant_id, world.point_id)
        assert point.address == "Số 5 Lê Lợi, Hà Đông"  # not overwritten
        # The sweep tries again and finds the same conflict: nothing new is written.
        (again,) = await changes.apply_due(conn, world.tenant_id, AT, today=D(2026, 12, 6))
        assert again.conflict == blocked.conflict
        actions = [
            e.action
            for e in await audit.history(
                conn, world.tenant_id, entity="change_request", entity_id=request.id
            )
        ]
        assert actions == ["apply_conflict", "approve", "submit"]
        # A person closes it.
        rejected = await changes.reject(
            conn, world.tenant_id, world.approver, AT, request.id, "Đã sửa trực tiếp"
        )
        assert rejected.status is RequestStatus.REJECTED
        assert await changes.apply_due(conn, world.tenant_id, AT, today=D(2026, 12, 7)) == []
        assert await _notices(conn, world) != []  # told of the rejection
        listed = await changes.list_requests(
            conn, world.tenant_id, status="rejected", customer_id=world.customer_id
        )
    assert [r.id for r in listed] == [request.id]


async def test_evidence_is_kept_unchanged(pool: Pool, world: World) -> None:
    photo = "Sổ hộ khẩu".encode() * 1000
    async with pool.connection() as conn:
        request = await _submit(conn, world, {"so_khau": 6}, D(2027, 1, 1))
        first = await changes.add_evidence(
            conn,
            world.tenant_id,
            world.clerk,
            AT,
            request.id,
            "so-ho-khau.jpg",
            "image/jpeg",
            photo,
        )
        again = await changes.add_evidence(
            conn, world.tenant_id, world.clerk, AT, request.id, "copy.jpg", "image/jpeg", photo
        )
        assert again.id == first.id  # the same file twice is one file
        assert first.sha256 == hashlib.sha256(photo).hexdigest()
        assert first.size_bytes == len(photo)
        other = await changes.add_evidence(
            conn, world.tenant_id, world.clerk, AT, request.id, "note.txt", "text/plain", b"x"
        )
        assert [e.id for e in await changes.evidence_of(conn, world.tenant_id, request.id)] == [
            first.id,
            other.id,
        ]
        read = await changes.get_evidence(conn, world.tenant_id, request.id, first.id)
        assert read.content == photo
        assert read.filename == "so-ho-khau.jpg"
        with pytest.raises(customers.InvalidValue, match=r"^content:"):
            await changes.add_evidence(
                conn, world.tenant_id, world.clerk, AT, request.id, "big.bin",
                "application/octet-stream", bytes(changes.MAX_EVIDENCE_BYTES + 1),
            )  # fmt: skip
        with pytest.raises(customers.InvalidValue, match=r"^filename:"):
            await changes.add_evidence(
                conn, world.tenant_id, world.clerk, AT, request.id, "../x", "text/plain", b"y"
            )
        # Tampered with behind the application's back: found on read.
        await conn.execute(
            "UPDATE change_request_evidence SET content = %s WHERE id = %s",
            (b"edited" + photo[6:], first.id),
        )
        with pytest.raises(changes.EvidenceCorrupt, match="does not match its SHA-256"):
            await changes.get_evidence(conn, world.tenant_id, request.id, first.id)
        # Decided: what was decided on does not change.
        await changes.approve(conn, world.tenant_id, world.approver, AT, request.id, today=TODAY)
        with pytest.raises(customers.Conflict, match=r"^status:"):
            await changes.add_evidence(
                conn, world.tenant_id, world.clerk, AT, request.id, "late.jpg", "image/jpeg", b"z"
            )


async def test_a_move_along_one_axis_is_a_move(pool: Pool, world: World) -> None:
    async with pool.connection() as conn:
        request = await _submit(conn, world, {"lat": 20.97, "lon": 105.7705}, TODAY)
    assert request.diff == {
        "lat": {"from": 20.97, "to": 20.97},
        "lon": {"from": 105.77, "to": 105.7705},
    }


def test_every_field_has_a_vietnamese_name() -> None:
    assert set(changes.FIELDS) <= set(change_notices._LABELS)
