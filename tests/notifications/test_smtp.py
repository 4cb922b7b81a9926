"""Email through a real SMTP server (aiosmtpd): Vietnamese intact, replies translated."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

import pytest

import notifications
from broker import free_port
from notifications import Channel, SmtpEmailSender, Status
from storage import Pool
from tests.notifications.conftest import NOW, SmtpServer

SUBJECT = "Yêu cầu thay đổi số khẩu đã được áp dụng"
BODY = (
    "Kính gửi Quán phở Hà,\n\n"
    "Yêu cầu thay đổi số khẩu (từ 4 thành 6) đã được áp dụng từ ngày 01/04/2026.\n"
    "Trân trọng, Công ty Môi trường đô thị Hà Đông"
)


def sender_for(server: SmtpServer) -> SmtpEmailSender:
    return SmtpEmailSender(
        server.host,
        server.port,
        "Môi trường Hà Đông <thongbao@urenco-hd.vn>",
        starttls=False,
        timeout_s=5,
    )


async def enqueue_email(pool: Pool, tenant_id: int, recipient: str = "ha@example.vn") -> int:
    async with pool.connection() as conn:
        notification_id = await notifications.enqueue(
            conn,
            tenant_id,
            customer_id=None,
            channel=Channel.EMAIL,
            recipient=recipient,
            subject=SUBJECT,
            body=BODY,
            dedupe_key="change_request:7:applied",
            now=NOW,
        )
    assert notification_id is not None
    return notification_id


async def stored(pool: Pool, tenant_id: int, notification_id: int) -> notifications.Notification:
    async with pool.connection() as conn:
        found = await notifications.get_notification(conn, tenant_id, notification_id)
    assert found is not None
    return found


async def test_email_arrives_with_its_vietnamese_text_intact(
    pool: Pool, tenant_id: int, smtp_server: SmtpServer
) -> None:
    notification_id = await enqueue_email(pool, tenant_id)
    senders = {Channel.EMAIL: sender_for(smtp_server)}
    report = await notifications.deliver_due(pool, senders, NOW)
    assert report == notifications.DeliveryReport(claimed=1, sent=1)
    (envelope,) = smtp_server.handler.received
    assert envelope.mail_from == "thongbao@urenco-hd.vn"
    assert envelope.rcpt_tos == ["ha@example.vn"]
    message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert message["Subject"] == SUBJECT
    assert message["From"] == "Môi trường Hà Đông <thongbao@urenco-hd.vn>"
    assert message["Message-ID"] == f"<sanitrack-notification-{notification_id}@urenco-hd.vn>"
    assert message.get_content_charset() == "utf-8"
    assert message.get_content().replace("\r\n", "\n").rstrip("\n") == BODY
    sent = await stored(pool, tenant_id, notification_id)
    assert sent.status is Status.SENT
    assert sent.provider_id == "TESTQ1"  # the relay's queue id
    assert sent.sent_at == NOW
    # Nothing is due any more.
    assert await notifications.deliver_due(pool, senders, NOW) == notifications.DeliveryReport()


@pytest.mark.parametrize(
    ("reply", "status", "attempts_left"),
    [
        ("451 4.3.0 Try again later", Status.PENDING, True),
        ("554 5.7.1 Message refused", Status.FAILED, False),
    ],
)
async def test_smtp_4xx_is_retried_and_5xx_is_final(
    pool: Pool,
    tenant_id: int,
    smtp_server: SmtpServer,
    reply: str,
    status: Status,
    attempts_left: bool,
) -> None:
    smtp_server.handler.reply = reply
    notification_id = await enqueue_email(pool, tenant_id)
    report = await notifications.deliver_due(pool, {Channel.EMAIL: sender_for(smtp_server)}, NOW)
    assert report.claimed == 1
    assert (report.retrying, report.failed) == ((1, 0) if attempts_left else (0, 1))
    after = await stored(pool, tenant_id, notification_id)
    assert after.status is status
    assert after.last_error is not None
    assert reply.split()[0] in after.last_error
    assert smtp_server.handler.received == []


async def test_a_refused_recipient_fails_for_good(
    pool: Pool, tenant_id: int, smtp_server: SmtpServer
) -> None:
    smtp_server.handler.refuse_recipients = {"nobody@example.vn"}
    notification_id = await enqueue_email(pool, tenant_id, "nobody@example.vn")
    report = await notifications.deliver_due(pool, {Channel.EMAIL: sender_for(smtp_server)}, NOW)
    assert report.failed == 1
    after = await stored(pool, tenant_id, notification_id)
    assert after.status is Status.FAILED
    assert after.last_error is not None
    assert "550" in after.last_error


async def test_an_unreachable_relay_is_a_temporary_failure() -> None:
    sender = SmtpEmailSender(
        "127.0.0.1", free_port(), "thongbao@urenco-hd.vn", starttls=False, timeout_s=2
    )
    with pytest.raises(notifications.TemporaryFailure, match="smtp"):
        await sender.send("ha@example.vn", SUBJECT, BODY, reference="r-1")
