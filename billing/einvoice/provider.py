"""The e-invoice provider (VNPT, Viettel, MISA...): it signs an issued invoice and has the
tax authority code it. ``EInvoiceProvider`` is the extension point; ``HttpEInvoiceProvider``
speaks our protocol, modelled on the providers' REST APIs (an adapter per real provider
translates it), JSON over HTTP:

    Every request: X-API-Key: <key>, and HTTP basic auth when the seller has an account.

    POST /api/invoices
        Idempotency-Key: 0100106779-1C26TAA-00000017   (seller tax code-template symbol-number)
        {"seller_tax_code": "0100106779", "template": "1", "symbol": "C26TAA",
         "number": 17, "xml": "<the invoice XML, base64>"}
      → 202 {"provider_ref": "...", "state": "accepted"}
      The same key again → 200, the same provider_ref and its state now (maybe "coded"),
      so a retry whose first answer was lost is not a second invoice. A rejected
      submission frees its key: sending again is a new submission (the corrected invoice).
      The same key with other XML while the first is not rejected → 409.
      A document refused → 4xx {"error": "<why, in the provider's words>"}.

    GET /api/invoices/{provider_ref}
      → 200 {"provider_ref": "...", "state": "accepted" | "pending" | "coded" | "rejected",
             "authority_code": "<34 characters>" | null, "reason": "..." | null}

States: accepted (taken), pending (with the authority), coded (the authority's code,
"mã của cơ quan thuế", is given), rejected (by the provider or the authority; ``reason``
says why). An invoice of a K symbol (without a code) stays accepted: nothing is coded.

5xx, 401, 403, 404, 408, 425, 429, time-outs, refused connections and unreadable answers
are temporary (ProviderUnavailable): the same request is tried again later, which the
idempotency key makes safe. Other 4xx are ProviderRejected, with the provider's message.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import re
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from billing.einvoice.settings import EInvoiceSettings
from billing.errors import BillingError

AUTHORITY_CODE = re.compile(r"^[0-9A-Z]{34}$")
# A wrong key or address is fixed by configuration, not by the invoice: try it again then.
_TEMPORARY_STATUS = {401, 403, 404, 408, 425, 429}


class ProviderState(enum.StrEnum):
    ACCEPTED = "accepted"
    PENDING = "pending"
    CODED = "coded"
    REJECTED = "rejected"


class ProviderError(BillingError):
    """An exchange with the provider gave no answer; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ProviderUnavailable(ProviderError):
    """Worth asking again later: the provider is down, slow or answered something
    unreadable."""


class ProviderRejected(ProviderError):
    """The provider refused the request; asking again unchanged will not help."""


def idempotency_key(seller_tax_code: str, template: str, symbol: str, number: int) -> str:
    """The same for every try of one invoice, and unique: (seller, template, symbol,
    number) is never used twice."""
    return f"{seller_tax_code}-{template}{symbol}-{number:08d}"


@dataclass(frozen=True, slots=True)
class Submission:
    """One issued invoice to sign and have coded."""

    idempotency_key: str
    seller_tax_code: str
    template: str
    symbol: str
    number: int
    xml: bytes


@dataclass(frozen=True, slots=True)
class ProviderAnswer:
    """What the provider says of a submission, to a submit or a status question."""

    provider_ref: str
    state: ProviderState
    authority_code: str | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if not self.provider_ref:
            raise ValueError("provider_ref: must not be empty")
        if self.state is ProviderState.CODED and not AUTHORITY_CODE.match(
            self.authority_code or ""
        ):
            raise ValueError(
                f"authority_code: {self.authority_code!r} is not 34 upper-case letters or digits"
            )


class EInvoiceProvider(Protocol):
    """Signs issued invoices and has them coded. Both methods raise ProviderUnavailable or
    ProviderRejected, nothing else."""

    async def submit(self, submission: Submission) -> ProviderAnswer: ...

    async def status(self, provider_ref: str) -> ProviderAnswer: ...


class HttpEInvoiceProvider:
    """The provider over HTTP; its connections live inside ``async with``."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._auth = httpx.BasicAuth(username, password or "") if username else None
        self._timeout_s = timeout_s
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def from_settings(cls, settings: EInvoiceSettings) -> HttpEInvoiceProvider:
        if settings.base_url is None or settings.api_key is None:
            raise ValueError("einvoice base_url is not set: invoices are not sent")
        return cls(
            settings.base_url,
            settings.api_key.get_secret_value(),
            username=settings.username,
            password=None if settings.password is None else settings.password.get_secret_value(),
            timeout_s=settings.timeout_s,
        )

    async def __aenter__(self) -> HttpEInvoiceProvider:
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=self._timeout_s,
            headers={"X-API-Key": self._api_key},
            auth=self._auth,
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

    async def submit(self, submission: Submission) -> ProviderAnswer:
        payload = {
            "seller_tax_code": submission.seller_tax_code,
            "template": submission.template,
            "symbol": submission.symbol,
            "number": submission.number,
            "xml": base64.b64encode(submission.xml).decode("ascii"),
        }
        answer = await self._exchange(
            "POST",
            "/api/invoices",
            json=payload,
            headers={"Idempotency-Key": submission.idempotency_key},
        )
        return _answer(answer, None)

    async def status(self, provider_ref: str) -> ProviderAnswer:
        answer = await self._exchange("GET", f"/api/invoices/{quote(provider_ref, safe='')}")
        return _answer(answer, provider_ref)

    async def _exchange(self, method: str, path: str, **options: Any) -> Any:
        if self._client is None:
            raise RuntimeError("HttpEInvoiceProvider used outside `async with`")
        # httpx's time-out is per read or write; the exchange as a whole is bounded too, so
        # it always ends before the sender's claim on the invoice does.
        try:
            async with asyncio.timeout(self._timeout_s):
                response = await self._client.request(method, path, **options)
        except TimeoutError as exc:
            raise ProviderUnavailable(f"provider: no answer within {self._timeout_s:g} s") from exc
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"provider: {type(exc).__name__}: {exc}") from exc
        if response.is_success:
            try:
                return response.json()
            except ValueError as exc:
                raise ProviderUnavailable(
                    f"provider: HTTP {response.status_code} answer is not JSON"
                ) from exc
        detail = f"HTTP {response.status_code}: {_message(response)}"
        if response.status_code in _TEMPORARY_STATUS or response.status_code >= 500:
            raise ProviderUnavailable(f"provider: {detail}")
        raise ProviderRejected(detail)


def _message(response: httpx.Response) -> str:
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if isinstance(answer, dict) and isinstance(answer.get("error"), str):
        return str(answer["error"])[:500]
    return response.text[:300]


def _answer(answer: Any, provider_ref: str | None) -> ProviderAnswer:
    """The answer as a ProviderAnswer; an unreadable one is temporary: asking again with the
    same key or reference is safe."""
    if not isinstance(answer, dict):
        raise ProviderUnavailable(f"provider: answer is not an object: {str(answer)[:200]}")
    try:
        return ProviderAnswer(
            provider_ref=_string(answer.get("provider_ref")) or provider_ref or "",
            state=ProviderState(str(answer.get("state"))),
            authority_code=_string(answer.get("authority_code")),
            reason=_string(answer.get("reason")),
        )
    except ValueError as exc:
        raise ProviderUnavailable(f"provider: unreadable answer: {exc}") from exc


def _string(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}"[:200])
    return value
