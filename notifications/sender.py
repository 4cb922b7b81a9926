"""Delivering the outbox: claim due messages, send each through its channel's sender,
settle it as sent, retry it later (exponential back-off with jitter) or mark it failed.

``deliver_due`` is one round and takes the time as a parameter, so tests drive retries
by passing later times; ``run_sender`` is the worker's loop around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
from collections import Counter
from collections.abc import AsyncIterator, Mapping

import psycopg

from notifications import outbox
from notifications.sms import SmsGateway
from notifications.smtp import SmtpEmailSender
from notifications.types import (
    Channel,
    DeliveryReport,
    Notification,
    PermanentFailure,
    Sender,
    TemporaryFailure,
)
from sanitrack.clock import Clock
from sanitrack.settings import NotificationSettings
from storage import Pool

log = logging.getLogger(__name__)

DEFAULT_SETTINGS = NotificationSettings()
# The worker's own back-off when the database is unreachable.
_DATABASE_RETRY_MAX_S = 60.0


def retry_delay_s(
    attempts: int, settings: NotificationSettings, rng: random.Random | None = None
) -> float:
    """How long to wait after failed attempt number ``attempts`` (1, 2, ...): the initial
    delay doubled per attempt up to the maximum, then jittered down by up to half."""
    base = min(settings.retry_max_s, settings.retry_initial_s * 2.0 ** min(attempts - 1, 60))
    return base / 2 + (rng or random).uniform(0, base / 2)


def reference(notification: Notification) -> str:
    """The same on every try of one message."""
    return f"sanitrack-notification-{notification.id}"


async def deliver_due(
    pool: Pool,
    senders: Mapping[Channel, Sender],
    now: dt.datetime,
    *,
    batch: int = 100,
    settings: NotificationSettings = DEFAULT_SETTINGS,
    rng: random.Random | None = None,
) -> DeliveryReport:
    """Send up to ``batch`` messages due at ``now`` on the channels that have a sender.

    The claim is committed before anything is sent, and each result is written as soon as
    it is known, so a crash re-sends at most the messages in flight (after
    ``claim_timeout_s``). Messages of a channel without a sender stay in the outbox.
    """
    async with pool.connection() as conn:
        claimed = await outbox.claim_due(
            conn, now, set(senders), limit=batch, claim_timeout_s=settings.claim_timeout_s
        )
    if not claimed:
        return DeliveryReport()
    outcomes: Counter[str] = Counter()
    parallel = asyncio.Semaphore(settings.parallel_sends)

    async def deliver(notification: Notification) -> None:
        async with parallel:
            outcome = await _attempt(senders[notification.channel], notification)
        try:
            async with pool.connection() as conn:
                settled = await _settle(conn, notification, outcome, now, settings, rng)
        except psycopg.Error as exc:
            # Its claim times out and it is tried again: sent twice at worst, never lost.
            log.warning(
                "notification %s: result %s not written: %s", notification.id, outcome[0], exc
            )
            settled = "unsettled"
        outcomes[settled] += 1

    async with asyncio.TaskGroup() as tasks:
        for notification in claimed:
            tasks.create_task(deliver(notification), name=f"notification-{notification.id}")
    return DeliveryReport(
        claimed=len(claimed),
        sent=outcomes["sent"],
        retrying=outcomes["retrying"],
        failed=outcomes["failed"],
        unsettled=outcomes["unsettled"],
    )


# What a try came to: ("sent", provider id) or ("temporary" | "permanent", reason).
_Outcome = tuple[str, str | None]


async def _attempt(sender: Sender, notification: Notification) -> _Outcome:
    try:
        provider_id = await sender.send(
            notification.recipient,
            notification.subject,
            notification.body,
            reference=reference(notification),
        )
    except PermanentFailure as exc:
        return "permanent", exc.reason
    except TemporaryFailure as exc:
        return "temporary", exc.reason
    except Exception as exc:
        # A sender's bug must not stop the others; the message is retried and then fails.
        log.exception(
            "notification %s: the %s sender raised", notification.id, notification.channel
        )
        return "temporary", f"{type(exc).__name__}: {exc}"
    return "sent", provider_id


async def _settle(
    conn: psycopg.AsyncConnection[object],
    notification: Notification,
    outcome: _Outcome,
    now: dt.datetime,
    settings: NotificationSettings,
    rng: random.Random | None,
) -> str:
    kind, detail = outcome
    if kind == "sent":
        await outbox.record_sent(conn, notification, detail, now)
        return "sent"
    reason = detail or kind
    if kind == "permanent" or notification.attempts >= settings.max_attempts:
        log.warning(
            "notification %s failed after %s attempt(s): %s",
            notification.id,
            notification.attempts,
            reason,
        )
        await outbox.record_failed(conn, notification, reason)
        return "failed"
    delay_s = retry_delay_s(notification.attempts, settings, rng)
    log.info("notification %s: %s; retrying in %.0f s", notification.id, reason, delay_s)
    await outbox.record_retry(conn, notification, reason, now + dt.timedelta(seconds=delay_s))
    return "retrying"


@contextlib.asynccontextmanager
async def open_senders(settings: NotificationSettings) -> AsyncIterator[dict[Channel, Sender]]:
    """The senders of the configured channels (none: nothing is sent)."""
    senders: dict[Channel, Sender] = {}
    async with contextlib.AsyncExitStack() as stack:
        if settings.smtp_host is not None:
            senders[Channel.EMAIL] = SmtpEmailSender.from_settings(settings)
        if settings.sms_gateway_url is not None:
            senders[Channel.SMS] = await stack.enter_async_context(
                SmsGateway.from_settings(settings)
            )
        yield senders


async def run_sender(pool: Pool, settings: NotificationSettings, clock: Clock) -> None:
    """The worker's loop: a round every ``send_interval_s``, at once again while rounds come
    back full; a database outage is waited out with jittered back-off. Returns at once when
    no channel is configured."""
    async with open_senders(settings) as senders:
        if not senders:
            log.info("notifications: no SMTP host or SMS gateway set; messages stay queued")
            return
        log.info("notifications: sending %s", ", ".join(sorted(senders)))
        outage_s = 0.0
        while True:
            try:
                report = await deliver_due(
                    pool, senders, clock.now(), batch=settings.batch_max, settings=settings
                )
            except psycopg.Error as exc:
                outage_s = min(_DATABASE_RETRY_MAX_S, max(1.0, outage_s * 2))
                log.warning(
                    "notifications: database unavailable (%s); retry in %.0f s", exc, outage_s
                )
                await asyncio.sleep(outage_s / 2 + random.uniform(0, outage_s / 2))
                continue
            outage_s = 0.0
            if report.claimed:
                log.info(
                    "notifications: %s sent, %s to retry, %s failed",
                    report.sent,
                    report.retrying,
                    report.failed,
                )
            if report.claimed < settings.batch_max:
                await asyncio.sleep(settings.send_interval_s)
