"""The outbox: one message per recipient and dedupe key, values checked, claims fenced."""

from __future__ import annotations

import datetime as dt

import pytest

import notifications
from notifications import Channel, InvalidNotification, outbox
from storage import Pool
from tests.notifications.conftest import NOW


async def test_one_message_per_dedupe_key_and_recipient(pool: Pool, tenant_id: int) -> None:
    async with pool.connection() as conn:

        async def sms(recipient: str, key: str = "change_request:1:applied") -> int | None:
            return await notifications.enqueue(
                conn,
                tenant_id,
                customer_id=None,
                channel="sms",
                recipient=recipient,
                subject="",
                body="Yêu cầu thay đổi đã được áp dụng",
                dedupe_key=key,
                now=NOW,
            )

        first = await sms("090 123 4567")
        assert first is not None
        assert await sms("0901234567") is None  # the same number, written differently
        assert await sms("090.123.4567") is None
        assert await sms("0901234567", "change_request:2:applied") is not None
        assert await sms("0912345678") is not None  # another recipient
        by_email = await notifications.enqueue(
            conn,
            tenant_id,
            customer_id=None,
            channel=Channel.EMAIL,
            recipient=" ha@example.vn ",
            subject="Thông báo",
            body="Nội dung",
            dedupe_key="change_request:1:applied",
            now=NOW,
        )
        assert by_email is not None  # the same reason on another channel
        stored = await notifications.get_notification(conn, tenant_id, first)
        assert stored is not None
        assert stored.recipient == "0901234567"
        assert stored.status is notifications.Status.PENDING
        assert stored.attempts == 0
        assert stored.next_attempt_at == NOW
        listed = await notifications.list_notifications(
            conn, tenant_id, dedupe_key="change_request:1:applied"
        )
        assert sorted(n.channel for n in listed) == [Channel.EMAIL, Channel.SMS, Channel.SMS]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"channel": "fax"}, "channel"),
        ({"recipient": "not-an-address"}, "recipient"),
        ({"channel": "sms", "recipient": "call me"}, "recipient"),
        ({"body": ""}, "body"),
        ({"subject": "x" * 301}, "subject"),
        ({"dedupe_key": ""}, "dedupe_key"),
        ({"now": dt.datetime(2026, 3, 2, 8, 0)}, "now"),
    ],
)
async def test_bad_values_name_the_field(
    pool: Pool, tenant_id: int, changes: dict[str, object], field: str
) -> None:
    values: dict[str, object] = {
        "customer_id": None,
        "channel": "email",
        "recipient": "ha@example.vn",
        "subject": "Thông báo",
        "body": "Nội dung",
        "dedupe_key": "k",
        "now": NOW,
    }
    async with pool.connection() as conn:
        with pytest.raises(InvalidNotification, match=f"^{field}:"):
            await notifications.enqueue(conn, tenant_id, **(values | changes))  # type: ignore[arg-type]


async def test_a_late_result_of_an_older_claim_changes_nothing(pool: Pool, tenant_id: int) -> None:
    async with pool.connection() as conn:
        await notifications.enqueue(
            conn,
            tenant_id,
            customer_id=None,
            channel="sms",
            recipient="0901234567",
            subject="",
            body="Nội dung",
            dedupe_key="k",
            now=NOW,
        )
    async with pool.connection() as conn:
        (first_claim,) = await outbox.claim_due(
            conn, NOW, [Channel.SMS], limit=10, claim_timeout_s=60
        )
        assert await outbox.claim_due(conn, NOW, [Channel.SMS], limit=10, claim_timeout_s=60) == []
    later = NOW + dt.timedelta(seconds=61)  # the first worker went silent: taken again
    async with pool.connection() as conn:
        (second_claim,) = await outbox.claim_due(
            conn, later, [Channel.SMS], limit=10, claim_timeout_s=60
        )
        assert second_claim.attempts == 2
        assert not await outbox.record_failed(conn, first_claim, "late and wrong")
        assert await outbox.record_sent(conn, second_claim, "gw-1", later)
        stored = await notifications.get_notification(conn, tenant_id, second_claim.id)
    assert stored is not None
    assert stored.status is notifications.Status.SENT
    assert stored.provider_id == "gw-1"
    assert stored.sent_at == later
