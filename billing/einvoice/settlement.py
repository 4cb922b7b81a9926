"""What an exchange with the e-invoice provider does to an invoice: ``settle`` is a pure
state machine, ``(sending state, answer) -> (sending state, attempt to record)``, applied
by the sender to the invoice as stored when the answer arrives, so a late or repeated
answer is recognised rather than applied twice.

    issued --accepted/pending--> sent --pending--> sent --coded--> coded
    issued/sent --rejected--> issued (stopped: the accountant corrects and requeues)
    no answer --> retried with back-off, stopped after max_attempts failed tries in a row
    coded --coded, same code--> unchanged ("duplicate"); another code: kept out, flagged
    a K symbol (no authority code): sent is the end
"""

from __future__ import annotations

import datetime as dt
import enum
import random
from dataclasses import dataclass, replace

from billing.einvoice.provider import (
    ProviderAnswer,
    ProviderError,
    ProviderRejected,
    ProviderState,
    ProviderUnavailable,
)
from billing.einvoice.settings import EInvoiceSettings
from billing.invoice_models import InvoiceStatus

SENDABLE = (InvoiceStatus.ISSUED, InvoiceStatus.SENT)


class Outcome(enum.StrEnum):
    """What one exchange came to, as ``einvoice_attempts.outcome`` records it."""

    ACCEPTED = "accepted"
    PENDING = "pending"
    CODED = "coded"
    REJECTED = "rejected"
    FAILED = "failed"  # no answer; tried again later, or not (out of attempts)
    DUPLICATE = "duplicate"  # a coding already stored (or, a conflict, contradicting it)


@dataclass(frozen=True, slots=True)
class SendingState:
    """The sending columns of one invoice."""

    status: InvoiceStatus
    symbol: str
    provider_ref: str | None
    authority_code: str | None
    send_attempts: int  # failed tries in a row
    next_send_at: dt.datetime | None
    last_send_error: str | None
    sent_at: dt.datetime | None
    coded_at: dt.datetime | None

    @property
    def gets_code(self) -> bool:
        """A C symbol is coded by the authority; a K symbol is not: sent is the end."""
        return self.symbol.startswith("C")


@dataclass(frozen=True, slots=True)
class Attempt:
    operation: str  # submit | status
    outcome: Outcome
    detail: str
    conflict: bool = False  # a coding contradicting the stored one: kept out, to look into


def retry_delay_s(
    attempts: int, settings: EInvoiceSettings, rng: random.Random | None = None
) -> float:
    """The wait after failed try number ``attempts`` (1, 2, ...): retry_initial_s doubled
    per try up to retry_max_s, jittered down by up to half."""
    base = min(settings.retry_max_s, settings.retry_initial_s * 2.0 ** min(attempts - 1, 60))
    return base / 2 + (rng or random).uniform(0, base / 2)


def settle(
    state: SendingState,
    operation: str,
    result: ProviderAnswer | ProviderError,
    now: dt.datetime,
    settings: EInvoiceSettings,
    rng: random.Random | None = None,
) -> tuple[SendingState, Attempt]:
    """The invoice's sending state after ``result``, and the attempt to record. ``state`` is
    the invoice as stored now, which a late answer may find moved on."""
    answer = result if isinstance(result, ProviderAnswer) else None
    if answer is not None and answer.state is ProviderState.CODED:
        code = answer.authority_code
        if state.authority_code == code:
            return state, Attempt(operation, Outcome.DUPLICATE, f"coded again: {code}")
        if state.authority_code is not None:
            conflict = (
                f"conflict: {answer.provider_ref} answered code {code}, but {state.authority_code}"
                " is stored and kept"
            )
            new = replace(state, last_send_error=conflict)
            return new, Attempt(operation, Outcome.DUPLICATE, conflict, conflict=True)
    if state.status not in SENDABLE:
        # Cancelled (or corrected) while the exchange was under way: keep what the provider
        # says of it (a cancellation notice cites the code), leave its status.
        detail = f"invoice is {state.status}: answer kept, status unchanged"
        if answer is None:
            return replace(state, next_send_at=None), Attempt(operation, Outcome.FAILED, detail)
        new = replace(
            state,
            next_send_at=None,
            provider_ref=state.provider_ref or answer.provider_ref,
            authority_code=answer.authority_code or state.authority_code,
            coded_at=state.coded_at or (now if answer.authority_code else None),
        )
        return new, Attempt(operation, Outcome(answer.state.value), detail)
    if isinstance(result, ProviderUnavailable):
        attempts = state.send_attempts + 1
        if attempts >= settings.max_attempts:
            error = f"stopped after {attempts} failed tries in a row: {result.reason}"
            new = replace(state, send_attempts=attempts, next_send_at=None, last_send_error=error)
        else:
            retry_at = now + dt.timedelta(seconds=retry_delay_s(attempts, settings, rng))
            new = replace(
                state, send_attempts=attempts, next_send_at=retry_at, last_send_error=result.reason
            )
        return new, Attempt(operation, Outcome.FAILED, result.reason)
    if isinstance(result, ProviderRejected) and operation == "status":
        # The question was refused, not the invoice: the office looks and requeues.
        error = f"status of {state.provider_ref} refused: {result.reason}"
        new = replace(
            state, send_attempts=state.send_attempts + 1, next_send_at=None, last_send_error=error
        )
        return new, Attempt(operation, Outcome.FAILED, error)
    if answer is None or answer.state is ProviderState.REJECTED:
        # The invoice was refused: back to issued, for the accountant to correct and requeue.
        reason = result.reason if isinstance(result, ProviderError) else _rejection_reason(answer)
        new = replace(
            state,
            status=InvoiceStatus.ISSUED,
            provider_ref=None,
            sent_at=None,
            send_attempts=state.send_attempts + 1,
            next_send_at=None,
            last_send_error=reason,
        )
        return new, Attempt(operation, Outcome.REJECTED, reason)
    sent = replace(
        state,
        status=InvoiceStatus.SENT,
        provider_ref=answer.provider_ref,
        sent_at=state.sent_at or now,
        send_attempts=0,
        last_send_error=None,
    )
    if answer.state is ProviderState.CODED:
        new = replace(
            sent,
            status=InvoiceStatus.CODED,
            authority_code=answer.authority_code,
            coded_at=now,
            next_send_at=None,
        )
        detail = f"{answer.provider_ref} coded {answer.authority_code}"
        return new, Attempt(operation, Outcome.CODED, detail)
    next_at = now + dt.timedelta(seconds=settings.poll_interval_s) if state.gets_code else None
    detail = f"{answer.provider_ref} {answer.state}" + ("" if state.gets_code else ", no code")
    return replace(sent, next_send_at=next_at), Attempt(
        operation, Outcome(answer.state.value), detail
    )


def _rejection_reason(answer: ProviderAnswer | None) -> str:
    return (answer.reason if answer is not None else None) or "rejected without a reason"
