"""Messages to customers over email and SMS: an outbox written in the transaction that
causes a message, and a sender.

``enqueue`` puts a message in the outbox in the caller's transaction (a dedupe key keeps
one reason from reaching a recipient twice); the worker's ``run_sender`` sends what is due
through ``SmtpEmailSender`` and ``SmsGateway``, retrying temporary failures with jittered
exponential back-off.
"""

from notifications.fake_sms import FakeSmsGateway, ReceivedSms
from notifications.outbox import enqueue, get_notification, list_notifications
from notifications.sender import deliver_due, open_senders, retry_delay_s, run_sender
from notifications.sms import SmsGateway
from notifications.smtp import SmtpEmailSender
from notifications.types import (
    Channel,
    DeliveryFailure,
    DeliveryReport,
    InvalidNotification,
    Notification,
    NotificationError,
    PermanentFailure,
    Sender,
    Status,
    TemporaryFailure,
)

__all__ = [
    "Channel",
    "DeliveryFailure",
    "DeliveryReport",
    "FakeSmsGateway",
    "InvalidNotification",
    "Notification",
    "NotificationError",
    "PermanentFailure",
    "ReceivedSms",
    "Sender",
    "SmsGateway",
    "SmtpEmailSender",
    "Status",
    "TemporaryFailure",
    "deliver_due",
    "enqueue",
    "get_notification",
    "list_notifications",
    "open_senders",
    "retry_delay_s",
    "run_sender",
]
