"""The outbox: notifications written in the transaction that causes them, claimed and
settled by the sender.

A message is claimed by pushing its ``next_attempt_at`` past the claim time-out and
counting the attempt, in a short transaction of its own (``FOR UPDATE SKIP LOCKED``):
no transaction stays open while a server is being talked to, a second worker never takes
a claimed message, and one whose worker died is taken again once its claim times out
(delivery is at least once; the reference sent with every try lets a server tell). The
attempt count is the claim's fence: a late result of an older claim changes nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection
from typing import Any

from psycopg import AsyncConnection

from notifications.types import Channel, InvalidNotification, Notification, Status

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE_SEPARATORS = re.compile(r"[ .()-]")
_PHONE = re.compile(r"^\+?[0-9]{6,20}$")
MAX_ERROR_CHARS = 1000

_COLUMNS = (
    "id, tenant_id, customer_id, channel, recipient, subject, body, dedupe_key, status,"
    " attempts, next_attempt_at, last_error, provider_id, created_at, sent_at"
)


def _notification(row: tuple[Any, ...]) -> Notification:
    values = list(row)
    values[3] = Channel(values[3])
    values[8] = Status(values[8])
    return Notification(*values)


def normalise_recipient(channel: Channel, recipient: str) -> str:
    """The recipient as stored (and deduplicated): an email address trimmed, a phone number
    without its separators (``090 123 4567`` and ``090.123.4567`` are one number)."""
    recipient = recipient.strip()
    if channel is Channel.EMAIL:
        if not _EMAIL.match(recipient) or len(recipient) > 320:
            raise InvalidNotification(f"recipient: {recipient!r} is not an email address")
        return recipient
    phone = _PHONE_SEPARATORS.sub("", recipient)
    if not _PHONE.match(phone):
        raise InvalidNotification(
            f"recipient: {recipient!r} is not a phone number (6 to 20 digits, optional +)"
        )
    return phone


def _check_length(field: str, value: str, low: int, high: int) -> None:
    if not low <= len(value) <= high:
        raise InvalidNotification(f"{field}: {len(value)} characters, allowed {low} to {high}")


async def enqueue(
    conn: AsyncConnection[Any],
    tenant_id: int,
    *,
    customer_id: int | None,
    channel: Channel | str,
    recipient: str,
    subject: str,
    body: str,
    dedupe_key: str,
    now: dt.datetime,
) -> int | None:
    """Put a message in the outbox in the caller's transaction, due at ``now``; its id, or
    None when this recipient was already given a message with ``dedupe_key`` on this
    channel (nobody gets the same thing twice)."""
    try:
        channel = Channel(channel)
    except ValueError:
        raise InvalidNotification(
            f"channel: {channel!r}, allowed {', '.join(c.value for c in Channel)}"
        ) from None
    if now.tzinfo is None:
        raise InvalidNotification("now: must carry its time zone")
    recipient = normalise_recipient(channel, recipient)
    _check_length("subject", subject, 0, 300)
    _check_length("body", body, 1, 10_000)
    _check_length("dedupe_key", dedupe_key, 1, 200)
    cursor = await conn.execute(
        "INSERT INTO notifications (tenant_id, customer_id, channel, recipient, subject, body,"
        " dedupe_key, next_attempt_at, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (tenant_id, channel, recipient, dedupe_key) DO NOTHING RETURNING id",
        (tenant_id, customer_id, str(channel), recipient, subject, body, dedupe_key, now, now),
    )
    row = await cursor.fetchone()
    return None if row is None else int(row[0])


async def get_notification(
    conn: AsyncConnection[Any], tenant_id: int, notification_id: int
) -> Notification | None:
    cursor = await conn.execute(
        f"SELECT {_COLUMNS} FROM notifications WHERE tenant_id = %s AND id = %s",
        (tenant_id, notification_id),
    )
    row = await cursor.fetchone()
    return None if row is None else _notification(row)


async def list_notifications(
    conn: AsyncConnection[Any],
    tenant_id: int,
    *,
    customer_id: int | None = None,
    status: Status | str | None = None,
    dedupe_key: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Notification]:
    """A tenant's notifications, newest first."""
    where = ["tenant_id = %s"]
    params: list[Any] = [tenant_id]
    if customer_id is not None:
        where.append("customer_id = %s")
        params.append(customer_id)
    if status is not None:
        where.append("status = %s")
        params.append(str(Status(status)))
    if dedupe_key is not None:
        where.append("dedupe_key = %s")
        params.append(dedupe_key)
    cursor = await conn.execute(
        f"SELECT {_COLUMNS} FROM notifications WHERE {' AND '.join(where)}"
        " ORDER BY id DESC LIMIT %s OFFSET %s",
        [*params, limit, offset],
    )
    return [_notification(row) for row in await cursor.fetchall()]


async def claim_due(
    conn: AsyncConnection[Any],
    now: dt.datetime,
    channels: Collection[Channel],
    *,
    limit: int,
    claim_timeout_s: float,
) -> list[Notification]:
    """Claim up to ``limit`` messages due at ``now`` on ``channels`` (all tenants), oldest
    due first; each returned with its attempt counted. Commit before sending."""
    if not channels:
        return []
    cursor = await conn.execute(
        "UPDATE notifications n SET attempts = n.attempts + 1, next_attempt_at = %(until)s"
        " FROM (SELECT id FROM notifications WHERE status = 'pending'"
        " AND next_attempt_at <= %(now)s AND channel = ANY(%(channels)s)"
        " ORDER BY next_attempt_at, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED) due"
        " WHERE n.id = due.id RETURNING "
        + ", ".join(f"n.{c.strip()}" for c in _COLUMNS.split(",")),
        {
            "now": now,
            "until": now + dt.timedelta(seconds=claim_timeout_s),
            "channels": [str(c) for c in channels],
            "limit": limit,
        },
    )
    claimed = [_notification(row) for row in await cursor.fetchall()]
    return sorted(claimed, key=lambda n: (n.created_at, n.id))


def _error(reason: str) -> str:
    return reason[:MAX_ERROR_CHARS] or "(no reason given)"


async def record_sent(
    conn: AsyncConnection[Any], claimed: Notification, provider_id: str | None, now: dt.datetime
) -> bool:
    """Settle a claimed message as sent; False when its claim was lost meanwhile."""
    cursor = await conn.execute(
        "UPDATE notifications SET status = 'sent', provider_id = %s, sent_at = %s"
        " WHERE id = %s AND status = 'pending' AND attempts = %s",
        (provider_id[:200] if provider_id else None, now, claimed.id, claimed.attempts),
    )
    return cursor.rowcount == 1


async def record_retry(
    conn: AsyncConnection[Any], claimed: Notification, reason: str, retry_at: dt.datetime
) -> bool:
    """Leave a claimed message pending, due again at ``retry_at``."""
    cursor = await conn.execute(
        "UPDATE notifications SET next_attempt_at = %s, last_error = %s"
        " WHERE id = %s AND status = 'pending' AND attempts = %s",
        (retry_at, _error(reason), claimed.id, claimed.attempts),
    )
    return cursor.rowcount == 1


async def record_failed(conn: AsyncConnection[Any], claimed: Notification, reason: str) -> bool:
    """Settle a claimed message as failed for good."""
    cursor = await conn.execute(
        "UPDATE notifications SET status = 'failed', last_error = %s"
        " WHERE id = %s AND status = 'pending' AND attempts = %s",
        (_error(reason), claimed.id, claimed.attempts),
    )
    return cursor.rowcount == 1
