"""The core types of notifications: channels, the sender extension point, its errors, and
what a delivery round reports."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Protocol


class Channel(enum.StrEnum):
    EMAIL = "email"
    SMS = "sms"


class Status(enum.StrEnum):
    PENDING = "pending"  # waiting for its first try, a retry, or a claim to time out
    SENT = "sent"
    FAILED = "failed"  # refused for good, or out of attempts


class NotificationError(Exception):
    """Base of notification errors."""


class InvalidNotification(NotificationError):
    """A notification's field is out of range; the message names the field."""


class DeliveryFailure(NotificationError):
    """A sender could not deliver a message; ``reason`` says why, for the outbox row."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TemporaryFailure(DeliveryFailure):
    """Worth trying again later: the server is down or busy, a time-out, a refused login
    (fixed by configuration, not by the message)."""


class PermanentFailure(DeliveryFailure):
    """Trying again will not help: the recipient or the message was refused."""


class Sender(Protocol):
    """Delivers one message on one channel.

    ``reference`` is the same on every try of one message (the gateway's ``client_ref``,
    the email's Message-ID), so a server that saw a try whose answer was lost can tell.
    Returns the provider's id for the message, when it gives one. Raises TemporaryFailure
    or PermanentFailure, nothing else.
    """

    async def send(
        self, recipient: str, subject: str, body: str, *, reference: str
    ) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Notification:
    id: int
    tenant_id: int
    customer_id: int | None
    channel: Channel
    recipient: str
    subject: str
    body: str
    dedupe_key: str
    status: Status
    attempts: int
    next_attempt_at: dt.datetime
    last_error: str | None
    provider_id: str | None
    created_at: dt.datetime
    sent_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What one round of ``deliver_due`` did: each claimed message is counted once."""

    claimed: int = 0
    sent: int = 0
    retrying: int = 0  # a temporary failure: tried again later
    failed: int = 0  # a permanent failure, or the last attempt failed
    unsettled: int = 0  # tried, but the result could not be written: tried again later
