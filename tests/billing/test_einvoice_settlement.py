"""The sending state machine on timelines written here: no database, no HTTP."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

from billing.einvoice import (
    EInvoiceSettings,
    Outcome,
    ProviderAnswer,
    ProviderRejected,
    ProviderState,
    ProviderUnavailable,
    SendingState,
    retry_delay_s,
    settle,
)
from billing.invoice_models import InvoiceStatus

T0 = dt.datetime(2026, 7, 2, 3, 0, tzinfo=dt.UTC)
SETTINGS = EInvoiceSettings(
    max_attempts=3, retry_initial_s=60, retry_max_s=300, poll_interval_s=120
)
CODE = "A" * 34
OTHER_CODE = "B" * 34
QUEUED = SendingState(
    status=InvoiceStatus.ISSUED,
    symbol="C26TAA",
    provider_ref=None,
    authority_code=None,
    send_attempts=0,
    next_send_at=T0,
    last_send_error=None,
    sent_at=None,
    coded_at=None,
)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def answer(state: ProviderState, code: str | None = None) -> ProviderAnswer:
    return ProviderAnswer("REF-1", state, code)


def test_a_timeline_from_issued_to_coded() -> None:
    state, attempt = settle(QUEUED, "submit", ProviderUnavailable("HTTP 503"), T0, SETTINGS)
    assert (attempt.outcome, state.send_attempts, state.last_send_error) == (
        Outcome.FAILED,
        1,
        "HTTP 503",
    )
    assert state.next_send_at is not None
    assert at(30) <= state.next_send_at <= at(60)
    state, attempt = settle(state, "submit", answer(ProviderState.ACCEPTED), at(60), SETTINGS)
    assert attempt.outcome is Outcome.ACCEPTED
    assert (state.status, state.provider_ref, state.sent_at) == (
        InvoiceStatus.SENT,
        "REF-1",
        at(60),
    )
    assert (state.send_attempts, state.last_send_error, state.next_send_at) == (0, None, at(180))
    state, attempt = settle(state, "status", answer(ProviderState.PENDING), at(180), SETTINGS)
    assert (attempt.outcome, state.status, state.next_send_at) == (
        Outcome.PENDING,
        InvoiceStatus.SENT,
        at(300),
    )
    state, attempt = settle(state, "status", answer(ProviderState.CODED, CODE), at(300), SETTINGS)
    assert attempt.outcome is Outcome.CODED
    assert (state.status, state.authority_code, state.coded_at, state.next_send_at) == (
        InvoiceStatus.CODED,
        CODE,
        at(300),
        None,
    )
    assert state.sent_at == at(60)  # when it was first taken, not re-stamped


def test_a_second_coding_changes_nothing() -> None:
    coded, _ = settle(
        dataclasses.replace(QUEUED, status=InvoiceStatus.SENT, provider_ref="REF-1"),
        "status",
        answer(ProviderState.CODED, CODE),
        T0,
        SETTINGS,
    )
    again, attempt = settle(coded, "status", answer(ProviderState.CODED, CODE), at(5), SETTINGS)
    assert again == coded
    assert (attempt.outcome, attempt.conflict) == (Outcome.DUPLICATE, False)


def test_a_contradicting_coding_is_kept_out_and_flagged() -> None:
    coded = dataclasses.replace(
        QUEUED, status=InvoiceStatus.CODED, provider_ref="REF-1", authority_code=CODE, coded_at=T0
    )
    after, attempt = settle(
        coded, "status", answer(ProviderState.CODED, OTHER_CODE), at(5), SETTINGS
    )
    assert (after.status, after.authority_code, after.coded_at) == (InvoiceStatus.CODED, CODE, T0)
    assert attempt.conflict
    assert attempt.outcome is Outcome.DUPLICATE
    assert after.last_send_error is not None
    assert OTHER_CODE in after.last_send_error
    assert CODE in after.last_send_error


def test_the_last_failed_try_stops_and_says_so() -> None:
    state = QUEUED
    for n in range(1, 4):
        state, _ = settle(state, "submit", ProviderUnavailable("HTTP 500"), at(n), SETTINGS)
    assert state.send_attempts == 3
    assert state.next_send_at is None
    assert state.last_send_error == "stopped after 3 failed tries in a row: HTTP 500"
    assert state.status is InvoiceStatus.ISSUED


def test_a_rejection_goes_back_to_issued_and_waits_for_the_accountant() -> None:
    sent = dataclasses.replace(QUEUED, status=InvoiceStatus.SENT, provider_ref="REF-1", sent_at=T0)
    rejected = ProviderAnswer("REF-1", ProviderState.REJECTED, reason="Sai mã số thuế người mua")
    state, attempt = settle(sent, "status", rejected, at(60), SETTINGS)
    assert (state.status, state.provider_ref, state.sent_at, state.next_send_at) == (
        InvoiceStatus.ISSUED,
        None,
        None,
        None,
    )
    assert state.last_send_error == "Sai mã số thuế người mua"
    assert attempt.outcome is Outcome.REJECTED
    refused, attempt = settle(QUEUED, "submit", ProviderRejected("HTTP 422: sai"), T0, SETTINGS)
    assert (refused.status, refused.next_send_at, attempt.outcome) == (
        InvoiceStatus.ISSUED,
        None,
        Outcome.REJECTED,
    )


def test_a_refused_status_question_stops_but_the_invoice_stays_sent() -> None:
    sent = dataclasses.replace(QUEUED, status=InvoiceStatus.SENT, provider_ref="REF-1", sent_at=T0)
    state, attempt = settle(sent, "status", ProviderRejected("HTTP 400: bad ref"), T0, SETTINGS)
    assert (state.status, state.provider_ref, state.next_send_at) == (
        InvoiceStatus.SENT,
        "REF-1",
        None,
    )
    assert attempt.outcome is Outcome.FAILED
    assert state.last_send_error == "status of REF-1 refused: HTTP 400: bad ref"


def test_a_k_series_invoice_is_done_once_sent() -> None:
    k_series = dataclasses.replace(QUEUED, symbol="K26TAA")
    state, attempt = settle(k_series, "submit", answer(ProviderState.ACCEPTED), T0, SETTINGS)
    assert (state.status, state.next_send_at, attempt.outcome) == (
        InvoiceStatus.SENT,
        None,
        Outcome.ACCEPTED,
    )
    assert "no code" in attempt.detail


def test_a_late_answer_for_a_cancelled_invoice_keeps_its_status() -> None:
    cancelled = dataclasses.replace(QUEUED, status=InvoiceStatus.CANCELLED, next_send_at=at(600))
    state, attempt = settle(cancelled, "submit", answer(ProviderState.CODED, CODE), T0, SETTINGS)
    assert state.status is InvoiceStatus.CANCELLED
    assert (state.provider_ref, state.authority_code, state.next_send_at) == ("REF-1", CODE, None)
    assert attempt.outcome is Outcome.CODED
    assert "cancelled" in attempt.detail
    failed, attempt = settle(cancelled, "submit", ProviderUnavailable("x"), T0, SETTINGS)
    assert (failed.status, failed.send_attempts, failed.next_send_at) == (
        InvoiceStatus.CANCELLED,
        0,
        None,
    )


def test_retry_delays_double_up_to_the_maximum_with_jitter_below() -> None:
    rng = random.Random(3)
    for attempts, base in [(1, 60), (2, 120), (3, 240), (4, 300), (50, 300), (500, 300)]:
        delays = [retry_delay_s(attempts, SETTINGS, rng) for _ in range(200)]
        assert base / 2 <= min(delays) < max(delays) <= base
        assert max(delays) - min(delays) > base / 4
