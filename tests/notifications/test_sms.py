"""SMS through the fake gateway over real HTTP: the protocol, and its answers translated."""

from __future__ import annotations

import pytest

import notifications
from notifications import Channel, FakeSmsGateway, SmsGateway, Status
from storage import Pool
from tests.notifications.conftest import NOW

TEXT = "Sanitrack: Yêu cầu thay đổi số khẩu đã được áp dụng từ ngày 01/04/2026."


async def test_an_sms_reaches_the_gateway(
    pool: Pool, tenant_id: int, sms_gateway: FakeSmsGateway
) -> None:
    async with pool.connection() as conn:
        notification_id = await notifications.enqueue(
            conn,
            tenant_id,
            customer_id=None,
            channel=Channel.SMS,
            recipient="+84 90 123 4567",
            subject="ignored by SMS",
            body=TEXT,
            dedupe_key="change_request:7:applied",
            now=NOW,
        )
    async with SmsGateway(sms_gateway.url, "test-sms-key") as sender:
        report = await notifications.deliver_due(pool, {Channel.SMS: sender}, NOW)
    assert report == notifications.DeliveryReport(claimed=1, sent=1)
    (message,) = sms_gateway.messages
    assert (message.to, message.text) == ("+84901234567", TEXT)
    assert message.client_ref == f"sanitrack-notification-{notification_id}"
    async with pool.connection() as conn:
        sent = await notifications.get_notification(conn, tenant_id, notification_id or 0)
    assert sent is not None
    assert sent.status is Status.SENT
    assert sent.provider_id == message.id


async def test_a_repeated_reference_is_one_message(sms_gateway: FakeSmsGateway) -> None:
    async with SmsGateway(sms_gateway.url, "test-sms-key") as sender:
        first = await sender.send("0901234567", "", TEXT, reference="r-1")
        again = await sender.send("0901234567", "", TEXT, reference="r-1")
    assert first == again
    assert len(sms_gateway.messages) == 1
    assert sms_gateway.requests == 2


@pytest.mark.parametrize(
    ("status", "failure"),
    [
        (429, notifications.TemporaryFailure),
        (500, notifications.TemporaryFailure),
        (503, notifications.TemporaryFailure),
        (401, notifications.TemporaryFailure),  # a wrong key: fixed by configuration
        (400, notifications.PermanentFailure),
        (422, notifications.PermanentFailure),
    ],
)
async def test_gateway_answers_are_translated(
    sms_gateway: FakeSmsGateway, status: int, failure: type[Exception]
) -> None:
    sms_gateway.fail_next(1, status)
    async with SmsGateway(sms_gateway.url, "test-sms-key") as sender:
        with pytest.raises(failure, match=f"HTTP {status}"):
            await sender.send("0901234567", "", TEXT, reference="r-1")
        # The next try goes through.
        assert await sender.send("0901234567", "", TEXT, reference="r-1") == "fake-1"


async def test_a_wrong_key_and_a_slow_or_absent_gateway_are_temporary(
    sms_gateway: FakeSmsGateway,
) -> None:
    async with SmsGateway(sms_gateway.url, "wrong-key") as sender:
        with pytest.raises(notifications.TemporaryFailure, match="HTTP 401"):
            await sender.send("0901234567", "", TEXT, reference="r-1")
    sms_gateway.delay_s = 1.0
    async with SmsGateway(sms_gateway.url, "test-sms-key", timeout_s=0.2) as sender:
        with pytest.raises(notifications.TemporaryFailure, match="Timeout"):
            await sender.send("0901234567", "", TEXT, reference="r-2")
    url = sms_gateway.url
    await sms_gateway.__aexit__(None, None, None)
    async with SmsGateway(url, "test-sms-key", timeout_s=1) as sender:
        with pytest.raises(notifications.TemporaryFailure, match="ConnectError"):
            await sender.send("0901234567", "", TEXT, reference="r-3")
