"""A local e-invoice provider speaking the protocol of ``billing.einvoice.provider`` over
real HTTP (FastAPI under uvicorn, in this process), for tests and the demo. It checks the
XML it is sent, codes deterministically, keeps every request, and can be told to be slow,
to fail, to lose its answers, to reject, to keep an invoice pending, or to answer twice.

    async with FakeEInvoiceProvider() as fake:
        async with HttpEInvoiceProvider.from_settings(fake.settings()) as provider:
            ...
        fake.submissions  # once per invoice, however often it was sent

The demo starts it the same way, with a journal in its data directory
(``FakeEInvoiceProvider(journal=path)``): what the fake was sent survives a restart, as a
real provider's records would, so invoices sent by an earlier demo are still known.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import itertools
import json
import socket
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.background import BackgroundTask

from billing.einvoice.provider import ProviderState, idempotency_key
from billing.einvoice.settings import EInvoiceSettings

FAKE_PROVIDER_TAX_CODE = "0100109106"


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    method: str
    path: str
    idempotency_key: str | None
    status: int  # what the fake answered


@dataclass(slots=True)
class FakeSubmission:
    provider_ref: str
    idempotency_key: str
    seller_tax_code: str
    template: str
    symbol: str
    number: int
    xml: bytes
    state: ProviderState
    polls_before_coding: int
    polls: int = 0
    authority_code: str | None = None
    reason: str | None = None
    reject_when_coding: str | None = None

    def answer(self) -> dict[str, Any]:
        return {
            "provider_ref": self.provider_ref,
            "state": self.state.value,
            "authority_code": self.authority_code,
            "reason": self.reason,
        }


def authority_code(seller_tax_code: str, template: str, symbol: str, number: int) -> str:
    """The fake authority's code: 34 upper-case characters, the same for the same invoice."""
    identity = f"{seller_tax_code}|{template}{symbol}|{number}".encode()
    return hashlib.sha256(identity).hexdigest()[:34].upper()


@dataclass
class _Plan:
    """What the fake was told to do to the next requests."""

    failures: list[int] = field(default_factory=list)  # statuses to answer instead
    drops: int = 0  # submissions taken but answered 503
    rejections: list[tuple[str, str]] = field(default_factory=list)  # (reason, when)
    code_after_polls: int = 0


class FakeEInvoiceProvider:
    def __init__(
        self,
        *,
        api_key: str = "fake-einvoice-key",
        username: str | None = None,
        password: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        hold_s: float = 5.0,
        journal: Path | None = None,
    ) -> None:
        self.api_key = api_key
        self.username = username
        self.password = password
        self.host = host
        self.port = port
        self.delay_s = 0.0  # each answer waits this long, after the work is done
        # Each coding is answered twice: the first "coded" answer to a status question is
        # held until a second question about the same invoice has been answered "coded"
        # (at most hold_s), so the client receives the coding twice, the late copy last.
        self.answer_twice = False
        self.hold_s = hold_s
        self.requests: list[ReceivedRequest] = []
        self.submissions: list[FakeSubmission] = []
        self._plan = _Plan()
        self._refs = itertools.count(1)
        self._by_key: dict[str, FakeSubmission] = {}
        self._by_ref: dict[str, FakeSubmission] = {}
        self._coded_answers: dict[str, asyncio.Event] = {}
        self._server: uvicorn.Server | None = None
        self._serving: asyncio.Task[None] | None = None
        # One JSON line per change of a submission (the latest line of a reference wins).
        self.journal = journal
        if journal is not None and journal.exists():
            self._load(journal)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def settings(self, **overrides: Any) -> EInvoiceSettings:
        """Settings that send to this fake."""
        values: dict[str, Any] = {"base_url": self.url, "api_key": self.api_key}
        if self.username is not None:
            values |= {"username": self.username, "password": self.password}
        return EInvoiceSettings(**(values | overrides))

    # ------------------------------------------------------------ knobs

    def fail_next(self, count: int, status: int = 503) -> None:
        """Answer the next ``count`` requests with ``status``, doing nothing."""
        self._plan.failures.extend([status] * count)

    def drop_after_accept_next(self, count: int) -> None:
        """Take the next ``count`` new submissions but answer 503, as if the answer was lost."""
        self._plan.drops += count

    def reject_next(self, reason: str, *, when: Literal["submit", "coding"] = "submit") -> None:
        """Reject the next new submission: at once (422 with ``reason``) or when the
        authority would code it (its status becomes rejected)."""
        self._plan.rejections.append((reason, when))

    def code_after_polls(self, count: int) -> None:
        """Submissions from now on are answered "pending" to ``count`` status questions and
        coded at the next one (0: coded at the first)."""
        self._plan.code_after_polls = count

    def submissions_of(self, key: str) -> list[FakeSubmission]:
        return [s for s in self.submissions if s.idempotency_key == key]

    # ------------------------------------------------------------ journal

    def _load(self, journal: Path) -> None:
        latest: dict[str, FakeSubmission] = {}
        text = journal.read_text(encoding="utf-8")
        if text and not text.endswith("\n"):  # cut short by a kill: end it, the next is whole
            with journal.open("a", encoding="utf-8") as out:
                out.write("\n")
        for line in text.splitlines():
            try:
                record = json.loads(line)
                record["xml"] = base64.b64decode(record["xml"])
                record["state"] = ProviderState(record["state"])
                submission = FakeSubmission(**record)
            except (ValueError, TypeError, KeyError):
                continue  # a line cut short when the process was killed
            latest[submission.provider_ref] = submission
        for submission in latest.values():  # in the order they were first sent
            self.submissions.append(submission)
            self._by_ref[submission.provider_ref] = submission
            self._by_key[submission.idempotency_key] = submission
        self._refs = itertools.count(len(latest) + 1)

    def _journal(self, submission: FakeSubmission) -> None:
        if self.journal is None:
            return
        record = {name: getattr(submission, name) for name in FakeSubmission.__dataclass_fields__}
        record["xml"] = base64.b64encode(submission.xml).decode()
        record["state"] = submission.state.value
        with self.journal.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")

    # ------------------------------------------------------------ lifetime

    async def __aenter__(self) -> FakeEInvoiceProvider:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        self.port = listener.getsockname()[1]
        config = uvicorn.Config(
            self._app(),
            log_level="warning",
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        # Signals belong to the process that runs the fake, not to uvicorn.
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        self._server = server
        self._serving = asyncio.create_task(server.serve([listener]), name="fake-einvoice")
        while not server.started:
            if self._serving.done():
                await self._serving  # raises what stopped it
                raise RuntimeError("the fake e-invoice provider stopped while starting")
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        server, serving = self._server, self._serving
        self._server = self._serving = None
        if server is None or serving is None:
            return
        for event in self._coded_answers.values():
            event.set()  # release held answers
        server.should_exit = True
        await asyncio.wait_for(serving, 15)

    # ------------------------------------------------------------ HTTP

    def _app(self) -> FastAPI:
        app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

        @app.post("/api/invoices")
        async def submit(request: Request) -> JSONResponse:
            status, answer = self._submit(request.headers, await request.body())
            return await self._respond(request, status, answer)

        @app.get("/api/invoices/{provider_ref}")
        async def status(request: Request, provider_ref: str) -> JSONResponse:
            code, answer = self._status(request.headers, provider_ref)
            if self.answer_twice and answer.get("state") == ProviderState.CODED:
                return await self._coded_twice(request, provider_ref, answer)
            return await self._respond(request, code, answer)

        return app

    async def _respond(
        self,
        request: Request,
        status: int,
        answer: dict[str, Any],
        background: BackgroundTask | None = None,
    ) -> JSONResponse:
        key = request.headers.get("idempotency-key")
        self.requests.append(ReceivedRequest(request.method, request.url.path, key, status))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return JSONResponse(answer, status_code=status, background=background)

    async def _coded_twice(
        self, request: Request, provider_ref: str, answer: dict[str, Any]
    ) -> JSONResponse:
        answered = self._coded_answers.get(provider_ref)
        if answered is None:
            answered = self._coded_answers[provider_ref] = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(answered.wait(), self.hold_s)
            return await self._respond(request, 200, answer)
        # Released once this answer is on its way.
        return await self._respond(request, 200, answer, BackgroundTask(answered.set))

    def _refusal(self, headers: Any) -> tuple[int, dict[str, Any]] | None:
        if headers.get("x-api-key") != self.api_key:
            return 401, {"error": "wrong or missing X-API-Key"}
        if self.username is not None:
            expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            if headers.get("authorization") != f"Basic {expected}":
                return 401, {"error": "wrong account"}
        if self._plan.failures:
            return self._plan.failures.pop(0), {"error": "told to fail"}
        return None

    def _submit(self, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        refusal = self._refusal(headers)
        if refusal is not None:
            return refusal
        key = headers.get("idempotency-key")
        try:
            fields, xml = _read_submission(body)
        except ValueError as exc:
            return 400, {"error": str(exc)}
        expected_key = idempotency_key(*fields)
        if key != expected_key:
            return 400, {"error": f"Idempotency-Key must be {expected_key!r}, not {key!r}"}
        mismatch = _check_xml(xml, *fields)
        if mismatch is not None:
            return 422, {"error": mismatch}
        earlier = self._by_key.get(expected_key)
        if earlier is not None and earlier.state is not ProviderState.REJECTED:
            if earlier.xml != xml:
                return 409, {"error": f"{expected_key} was sent with another document"}
            return 200, earlier.answer()
        submission = FakeSubmission(
            provider_ref=f"FAKE-{next(self._refs):06d}",
            idempotency_key=expected_key,
            seller_tax_code=fields[0],
            template=fields[1],
            symbol=fields[2],
            number=fields[3],
            xml=xml,
            state=ProviderState.ACCEPTED,
            polls_before_coding=self._plan.code_after_polls,
        )
        self.submissions.append(submission)
        self._by_key[expected_key] = submission
        self._by_ref[submission.provider_ref] = submission
        if self._plan.rejections:
            reason, when = self._plan.rejections.pop(0)
            if when == "submit":
                submission.state, submission.reason = ProviderState.REJECTED, reason
                self._journal(submission)
                return 422, {"error": reason}
            submission.reject_when_coding = reason
        self._journal(submission)
        if self._plan.drops:
            self._plan.drops -= 1
            return 503, {"error": "taken, but this answer is lost"}
        return 202, submission.answer()

    def _status(self, headers: Any, provider_ref: str) -> tuple[int, dict[str, Any]]:
        refusal = self._refusal(headers)
        if refusal is not None:
            return refusal
        submission = self._by_ref.get(provider_ref)
        if submission is None:
            return 404, {"error": f"no invoice {provider_ref}"}
        codes = submission.symbol.startswith("C")
        if codes and submission.state in (ProviderState.ACCEPTED, ProviderState.PENDING):
            submission.polls += 1
            if submission.polls <= submission.polls_before_coding:
                submission.state = ProviderState.PENDING
            elif submission.reject_when_coding is not None:
                submission.state = ProviderState.REJECTED
                submission.reason = submission.reject_when_coding
            else:
                submission.state = ProviderState.CODED
                submission.authority_code = authority_code(
                    submission.seller_tax_code,
                    submission.template,
                    submission.symbol,
                    submission.number,
                )
            self._journal(submission)
        return 200, submission.answer()


def _read_submission(body: bytes) -> tuple[tuple[str, str, str, int], bytes]:
    """(seller tax code, template, symbol, number) and the XML; ValueError names what is
    wrong."""
    try:
        request = json.loads(body)
    except ValueError as exc:
        raise ValueError("the body is not JSON") from exc
    if not isinstance(request, dict):
        raise ValueError("the body is not a JSON object")
    strings = [request.get(name) for name in ("seller_tax_code", "template", "symbol", "xml")]
    if not all(isinstance(value, str) and value for value in strings):
        raise ValueError("seller_tax_code, template, symbol and xml are required strings")
    number = request.get("number")
    if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= 99_999_999:
        raise ValueError("number: an integer 1..99999999 is required")
    try:
        xml = base64.b64decode(str(request["xml"]), validate=True)
    except binascii.Error as exc:
        raise ValueError("xml: not base64") from exc
    tax_code, template, symbol = (str(value) for value in strings[:3])
    return (tax_code, template, symbol, number), xml


def _check_xml(xml: bytes, tax_code: str, template: str, symbol: str, number: int) -> str | None:
    """Why the XML does not belong to the request, or None."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        return f"xml: not well-formed: {exc}"
    general = root.find("DLHDon/TTChung")
    seller = root.find("DLHDon/NDHDon/NBan")
    if root.tag != "HDon" or general is None or seller is None:
        return "xml: HDon/DLHDon/TTChung and NDHDon/NBan are required"
    found = {
        "KHMSHDon": general.findtext("KHMSHDon"),
        "KHHDon": general.findtext("KHHDon"),
        "SHDon": general.findtext("SHDon"),
        "NBan/MST": seller.findtext("MST"),
    }
    expected = {"KHMSHDon": template, "KHHDon": symbol, "SHDon": str(number), "NBan/MST": tax_code}
    for name, value in expected.items():
        if found[name] != value:
            return f"xml: {name} is {found[name]!r}, the request says {value!r}"
    if root.find("DLHDon/NDHDon/DSHHDVu/HHDVu") is None:
        return "xml: the invoice has no line (DSHHDVu/HHDVu)"
    return None
