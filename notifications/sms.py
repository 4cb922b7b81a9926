"""SMS through an HTTP gateway speaking a small JSON protocol:

    POST <url>   Authorization: Bearer <api key>
    {"to": "0901234567", "text": "...", "client_ref": "notification-17"}
    -> 2xx {"id": "<the gateway's message id>"}

``client_ref`` is the same on every try of one message, so a gateway can drop a repeat
whose first answer was lost. 429, 408 and 5xx are temporary; so are 401 and 403 (a wrong
key is fixed by configuration, and the messages should then go); other 4xx are permanent.
"""

from __future__ import annotations

import logging
from types import TracebackType

import httpx

from notifications.types import PermanentFailure, TemporaryFailure
from sanitrack.settings import NotificationSettings

log = logging.getLogger(__name__)

_TEMPORARY_STATUS = {401, 403, 408, 425, 429}


class SmsGateway:
    """A sender for the SMS gateway; its HTTP connections live inside ``async with``."""

    def __init__(self, url: str, api_key: str, *, timeout_s: float = 15.0) -> None:
        self.url = url
        self._api_key = api_key
        self._timeout_s = timeout_s
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def from_settings(cls, settings: NotificationSettings) -> SmsGateway:
        if settings.sms_gateway_url is None or settings.sms_api_key is None:
            raise ValueError("sms_gateway_url is not set: SMS is disabled")
        return cls(
            settings.sms_gateway_url,
            settings.sms_api_key.get_secret_value(),
            timeout_s=settings.sms_timeout_s,
        )

    async def __aenter__(self) -> SmsGateway:
        self._client = httpx.AsyncClient(
            timeout=self._timeout_s,
            headers={"Authorization": f"Bearer {self._api_key}"},
            follow_redirects=False,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def send(self, recipient: str, subject: str, body: str, *, reference: str) -> str | None:
        """Send ``body`` to ``recipient`` (an SMS has no subject)."""
        if self._client is None:
            raise RuntimeError("SmsGateway.send outside `async with`")
        try:
            response = await self._client.post(
                self.url, json={"to": recipient, "text": body, "client_ref": reference}
            )
        except httpx.HTTPError as exc:
            raise TemporaryFailure(f"sms gateway: {type(exc).__name__}: {exc}") from exc
        if response.is_success:
            return _message_id(response, reference)
        detail = f"sms gateway: HTTP {response.status_code}: {response.text[:300]}"
        if response.status_code in _TEMPORARY_STATUS or response.status_code >= 500:
            raise TemporaryFailure(detail)
        raise PermanentFailure(detail)


def _message_id(response: httpx.Response, reference: str) -> str | None:
    # The gateway took the message: a malformed answer must not make us send it again.
    try:
        answer = response.json()
    except ValueError:
        answer = None
    message_id = answer.get("id") if isinstance(answer, dict) else None
    if isinstance(message_id, str | int) and not isinstance(message_id, bool):
        return str(message_id)
    log.warning("sms gateway accepted %s without a message id", reference)
    return None
