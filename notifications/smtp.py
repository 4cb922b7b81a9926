"""Email through an SMTP relay (aiosmtplib): one connection per message, UTF-8 throughout,
SMTP replies translated into temporary and permanent failures."""

from __future__ import annotations

import email.policy
import email.utils
import re
from email.message import EmailMessage

import aiosmtplib

from notifications.types import PermanentFailure, TemporaryFailure
from sanitrack.settings import NotificationSettings

_QUEUE_ID = re.compile(r"queued as (\S+)", re.IGNORECASE)


class SmtpEmailSender:
    """Sends a plain-text email per message.

    A 4xx reply is temporary, a 5xx one permanent, except a refused login (535, 530):
    that is the relay's configuration, not the message's fault, so it is retried too.
    The provider id is the relay's queue id when its reply names one, otherwise the
    Message-ID, which is derived from the reference and so the same on every try.
    """

    def __init__(
        self,
        host: str,
        port: int,
        from_address: str,
        *,
        starttls: bool = True,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.host = host
        self.port = port
        self.from_address = from_address
        self.starttls = starttls
        self.username = username
        self.password = password
        self.timeout_s = timeout_s
        _, address = email.utils.parseaddr(from_address)
        self._domain = address.rpartition("@")[2] or "sanitrack.invalid"

    @classmethod
    def from_settings(cls, settings: NotificationSettings) -> SmtpEmailSender:
        if settings.smtp_host is None:
            raise ValueError("smtp_host is not set: email is disabled")
        password = settings.smtp_password
        return cls(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_from,
            starttls=settings.smtp_starttls,
            username=settings.smtp_username,
            password=password.get_secret_value() if password is not None else None,
            timeout_s=settings.smtp_timeout_s,
        )

    def message(self, recipient: str, subject: str, body: str, reference: str) -> EmailMessage:
        message = EmailMessage(policy=email.policy.SMTP)
        message["From"] = self.from_address
        message["To"] = recipient
        message["Subject"] = subject
        message["Message-ID"] = f"<{reference}@{self._domain}>"
        message["Date"] = email.utils.formatdate(localtime=False)
        message.set_content(body, charset="utf-8")
        return message

    async def send(self, recipient: str, subject: str, body: str, *, reference: str) -> str | None:
        message = self.message(recipient, subject, body, reference)
        try:
            _, reply = await aiosmtplib.send(
                message,
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                start_tls=self.starttls,
                timeout=self.timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refusals = exc.recipients
            code = max((r.code for r in refusals), default=550)
            detail = "; ".join(f"{r.code} {r.message}" for r in refusals)
            failure = PermanentFailure if code >= 500 else TemporaryFailure
            raise failure(f"smtp: recipient refused: {detail}") from exc
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise TemporaryFailure(f"smtp: login refused: {exc.code} {exc.message}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            failure = PermanentFailure if exc.code >= 500 else TemporaryFailure
            raise failure(f"smtp: {exc.code} {exc.message}") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            # Connection refused, time-outs, disconnects, STARTTLS not offered.
            raise TemporaryFailure(f"smtp: {type(exc).__name__}: {exc}") from exc
        queued = _QUEUE_ID.search(reply)
        return queued.group(1) if queued else str(message["Message-ID"])
