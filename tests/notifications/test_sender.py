"""Delivery rounds: retries with back-off driven by the time passed in, final failures,
claims that keep two workers from sending one message twice, and the worker's loop."""

from __future__ import annotations

import asyncio
import datetime as dt
import random

import pytest

import notifications
from notifications import Channel, DeliveryReport, FakeSmsGateway, SmsGateway, Status
from sanitrack.clock import SystemClock
from sanitrack.settings import NotificationSettings
from storage import Pool
from tests.notifications.conftest import NOW
from tests.support import wait_for

SETTINGS = NotificationSettings(max_attempts=3, retry_initial_s=60, retry_max_s=600)


def at(seconds: float) -> dt.datetime:
    return NOW + dt.timedelta(seconds=seconds)


async def enqueue_sms(pool: Pool, tenant_id: int, count: int = 1) -> list[int]:
    ids = []
    async with pool.connection() as conn:
        for n in range(count):
            notification_id = await notifications.enqueue(
                conn,
                tenant_id,
                customer_id=None,
                channel=Channel.SMS,
                recipient=f"09{n:08d}",
                subject="",
                body=f"Thông báo số {n}",
                dedupe_key="test",
                now=NOW,
            )
            assert notification_id is not None
            ids.append(notification_id)
    return ids


async def stored(pool: Pool, tenant_id: int, notification_id: int) -> notifications.Notification:
    async with pool.connection() as conn:
        found = await notifications.get_notification(conn, tenant_id, notification_id)
    assert found is not None
    return found


def test_retry_delays_double_up_to_the_maximum_with_jitter_below() -> None:
    rng = random.Random(7)
    for attempts, base in [(1, 60), (2, 120), (3, 240), (4, 480), (5, 600), (30, 600), (200, 600)]:
        delays = [notifications.retry_delay_s(attempts, SETTINGS, rng) for _ in range(200)]
        assert base / 2 <= min(delays) < max(delays) <= base
        assert max(delays) - min(delays) > base / 4  # spread out, not all alike


async def test_a_temporary_failure_is_retried_later_then_sent(
    pool: Pool, tenant_id: int, sms_gateway: FakeSmsGateway
) -> None:
    (notification_id,) = await enqueue_sms(pool, tenant_id)
    sms_gateway.fail_next(1, 503)
    async with SmsGateway(sms_gateway.url, "test-sms-key") as sender:
        senders = {Channel.SMS: sender}
        report = await notifications.deliver_due(pool, senders, NOW, settings=SETTINGS)
        assert report == DeliveryReport(claimed=1, retrying=1)
        waiting = await stored(pool, tenant_id, notification_id)
        assert waiting.status is Status.PENDING
        assert waiting.attempts == 1
        assert at(30) <= waiting.next_attempt_at <= at(60)
        assert waiting.last_error is not None
        assert "HTTP 503" in waiting.last_error
        # Not due before its time.
        assert await notifications.deliver_due(pool, senders, at(29), settings=SETTINGS) == (
            DeliveryReport()
        )
        report = await notifications.deliver_due(pool, senders, at(60), settings=SETTINGS)
    assert report == DeliveryReport(claimed=1, sent=1)
    sent = await stored(pool, tenant_id, notification_id)
    assert (sent.status, sent.attempts, sent.sent_at) == (Status.SENT, 2, at(60))
    assert [m.text for m in sms_gateway.messages] == ["Thông báo số 0"]
    assert sms_gateway.requests == 2


async def test_out_of_attempts_is_failed(
    pool: Pool, tenant_id: int, sms_gateway: FakeSmsGateway
) -> None:
    (notification_id,) = await enqueue_sms(pool, tenant_id)
    sms_gateway.fail_next(10, 500)
    async with SmsGateway(sms_gateway.url, "test-sms-key") as sender:
        reports = [
            await notifications.deliver_due(pool, {Channel.SMS: sender}, at(s), settings=SETTINGS)
            for s in (0, 60, 180, 10_000)
        ]
    assert [(r.retrying, r.failed) for r in reports] == [(1, 0), (1, 0), (0, 1), (0, 0)]
    failed = await stored(pool, tenant_id, notification_id)
    assert (failed.status, failed.attempts) == (Status.FAILED, 3)
    assert sms_gateway.requests == 3


async def test_a_permanent_failure_is_failed_at_once(
    pool: Pool, tenant_id: int, sms_gateway: FakeSmsGateway
) -> None:
    (notification_id,) = await enqueue_sms(pool, tenant_id)
    sms_gateway.fail_next(1, 400)
    async with SmsGateway(sms_gateway.url, "test-sms-key") as sender:
        report = await notifications.deliver_due(pool, {Channel.SMS: sender}, NOW)
        assert report == DeliveryReport(claimed=1, failed=1)
        later = await notifications.deliver_due(pool, {Channel.SMS: sender}, at(86_400))
    assert later == DeliveryReport()
    failed = await stored(pool, tenant_id, notification_id)
    assert (failed.status, failed.attempts) == (Status.FAILED, 1)
    assert failed.last_error is not None
    assert "HTTP 400" in failed.last_error


async def test_messages_of_a_channel_without_a_sender_wait(
    pool: Pool, tenant_id: int, sms_gateway: FakeSmsGateway
) -> None:
    (notification_id,) = await enqueue_sms(pool, tenant_id)
    assert await notifications.deliver_due(pool, {}, NOW) == DeliveryReport()
    waiting = await stored(pool, tenant_id, notification_id)
    assert (waiting.status, waiting.attempts) == (Status.PENDING, 0)


async def test_concurrent_rounds_never_send_one_message_twice(
    pool: Pool, tenant_id: int, sms_gateway: FakeSmsGateway
) -> None:
    ids = await enqueue_sms(pool, tenant_id, 60)
    sms_gateway.delay_s = 0.01  # sends overlap the other round's claim
    async with SmsGateway(sms_gateway.url, "test-sms-key") as sender:
        senders = {Channel.SMS: sender}
        reports = await asyncio.gather(
            *(notifications.deliver_due(pool, senders, NOW, batch=25) for _ in range(4))
        )
        # Whatever the four rounds left is sent by the next ones.
        while (await notifications.deliver_due(pool, senders, NOW, batch=25)).claimed:
            pass
    assert sum(r.claimed for r in reports) == sum(r.sent for r in reports) <= 60
    assert sms_gateway.requests == 60  # each message sent exactly once
    assert sorted(m.client_ref for m in sms_gateway.messages) == sorted(
        f"sanitrack-notification-{n}" for n in ids
    )
    async with pool.connection() as conn:
        sent = await notifications.list_notifications(conn, tenant_id, status=Status.SENT)
    assert len(sent) == 60
    assert {n.attempts for n in sent} == {1}


async def test_the_worker_loop_sends_what_is_due(
    pool: Pool, tenant_id: int, sms_gateway: FakeSmsGateway
) -> None:
    settings = NotificationSettings(
        sms_gateway_url=sms_gateway.url, sms_api_key="test-sms-key", send_interval_s=0.05
    )
    worker = asyncio.create_task(
        notifications.run_sender(pool, settings, SystemClock()), name="notification sender"
    )
    try:
        await enqueue_sms(pool, tenant_id, 3)

        async def received() -> int:
            return len(sms_gateway.messages)

        assert await wait_for(received, 3, timeout_s=10) == 3
    finally:
        worker.cancel()
        with pytest.raises(asyncio.CancelledError):
            await worker
    assert sorted(m.to for m in sms_gateway.messages) == ["0900000000", "0900000001", "0900000002"]


async def test_the_worker_loop_ends_when_no_channel_is_configured(pool: Pool) -> None:
    async with asyncio.timeout(5):
        await notifications.run_sender(pool, NotificationSettings(), SystemClock())


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"retry_initial_s": 600, "retry_max_s": 60}, "retry_max_s"),
        ({"smtp_username": "u"}, "smtp_username and smtp_password"),
        ({"sms_gateway_url": "http://127.0.0.1:9099/sms"}, "sms_api_key"),
        ({"sms_gateway_url": "ftp://x/sms", "sms_api_key": "k"}, "sms_gateway_url"),
        ({"claim_timeout_s": 30, "smtp_timeout_s": 20}, "claim_timeout_s"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"smtp_from": "nobody"}, "smtp_from"),
    ],
)
def test_bad_settings_are_refused(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NotificationSettings(**values)
