"""The HTTP provider against the fake over real HTTP: the protocol's idempotency, the fake's
checks of what it is sent, and how each failure is classified; and the settings' checks."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pydantic
import pytest

from billing.einvoice import (
    EInvoiceSettings,
    FakeEInvoiceProvider,
    HttpEInvoiceProvider,
    ProviderRejected,
    ProviderState,
    ProviderUnavailable,
    Submission,
    idempotency_key,
    invoice_xml,
)
from billing.einvoice.fake import authority_code
from billing.invoices import load_documents
from broker import free_port
from storage import Pool
from tests.billing.invoice_support import new_tenant, seed_invoices


@pytest.fixture
async def fake() -> AsyncIterator[FakeEInvoiceProvider]:
    async with FakeEInvoiceProvider(username="urenco", password="mật khẩu") as fake:
        yield fake


@pytest.fixture
async def submission(pool: Pool) -> Submission:
    async with pool.connection() as conn:
        tenant_id = await new_tenant(conn)
        ids = await seed_invoices(conn, tenant_id, 1)
        (document,) = await load_documents(conn, tenant_id, ids)
    invoice = document.invoice
    assert invoice.template is not None
    assert invoice.symbol is not None
    assert invoice.number is not None
    assert invoice.seller_tax_code is not None
    return Submission(
        idempotency_key(invoice.seller_tax_code, invoice.template, invoice.symbol, invoice.number),
        invoice.seller_tax_code,
        invoice.template,
        invoice.symbol,
        invoice.number,
        invoice_xml(document),
    )


async def test_the_same_key_is_the_same_submission(
    fake: FakeEInvoiceProvider, submission: Submission
) -> None:
    async with HttpEInvoiceProvider.from_settings(fake.settings()) as provider:
        first = await provider.submit(submission)
        again = await provider.submit(submission)
        assert first.state is ProviderState.ACCEPTED
        assert again == first
        coded = await provider.status(first.provider_ref)
        assert coded.state is ProviderState.CODED
        assert coded.authority_code == authority_code("0100106779", "1", "C26TAA", 1)
        assert coded.authority_code is not None
        assert coded.authority_code.isupper()
        assert len(coded.authority_code) == 34
        # asked again after coding, the submission answers with its code
        assert await provider.submit(submission) == coded
    assert len(fake.submissions) == 1
    assert [r.status for r in fake.requests] == [202, 200, 200, 200]


async def test_the_same_key_with_another_document_is_refused(
    fake: FakeEInvoiceProvider, submission: Submission
) -> None:
    async with HttpEInvoiceProvider.from_settings(fake.settings()) as provider:
        await provider.submit(submission)
        other = dataclasses.replace(submission, xml=submission.xml.replace(b"Nguy", b"Ngy"))
        with pytest.raises(ProviderRejected, match=r"HTTP 409: .* another document"):
            await provider.submit(other)
    assert len(fake.submissions) == 1


async def test_xml_that_does_not_match_the_request_is_rejected(
    fake: FakeEInvoiceProvider, submission: Submission
) -> None:
    wrong_number = dataclasses.replace(
        submission,
        number=2,
        idempotency_key=idempotency_key(
            submission.seller_tax_code, submission.template, submission.symbol, 2
        ),
    )
    async with HttpEInvoiceProvider.from_settings(fake.settings()) as provider:
        with pytest.raises(ProviderRejected) as refused:
            await provider.submit(wrong_number)
        assert refused.value.reason == "HTTP 422: xml: SHDon is '1', the request says '2'"
        broken = dataclasses.replace(submission, xml=submission.xml[:-10])
        with pytest.raises(ProviderRejected, match="HTTP 422: xml: not well-formed"):
            await provider.submit(broken)
        wrong_key = dataclasses.replace(submission, idempotency_key="whatever")
        with pytest.raises(ProviderRejected, match="HTTP 400: Idempotency-Key must be"):
            await provider.submit(wrong_key)
    assert fake.submissions == []


async def test_a_wrong_key_or_account_is_temporary(
    fake: FakeEInvoiceProvider, submission: Submission
) -> None:
    for settings in (
        fake.settings(api_key="not-the-key"),
        fake.settings(password="sai mật khẩu"),
        fake.settings(username=None, password=None),
    ):
        async with HttpEInvoiceProvider.from_settings(settings) as provider:
            with pytest.raises(ProviderUnavailable, match="HTTP 401"):
                await provider.submit(submission)
    assert fake.submissions == []
    assert [r.status for r in fake.requests] == [401, 401, 401]


async def test_server_errors_unknown_references_and_silence_are_temporary(
    fake: FakeEInvoiceProvider, submission: Submission
) -> None:
    async with HttpEInvoiceProvider.from_settings(fake.settings()) as provider:
        fake.fail_next(1, 502)
        with pytest.raises(ProviderUnavailable, match="HTTP 502: told to fail"):
            await provider.submit(submission)
        with pytest.raises(ProviderUnavailable, match="HTTP 404"):
            await provider.status("FAKE-999999")
    nowhere = EInvoiceSettings(base_url=f"http://127.0.0.1:{free_port()}", api_key="k")
    async with HttpEInvoiceProvider.from_settings(nowhere) as provider:
        with pytest.raises(ProviderUnavailable, match="ConnectError"):
            await provider.submit(submission)


async def test_the_provider_is_used_inside_async_with(fake: FakeEInvoiceProvider) -> None:
    provider = HttpEInvoiceProvider.from_settings(fake.settings())
    with pytest.raises(RuntimeError, match="async with"):
        await provider.status("FAKE-000001")
    with pytest.raises(ValueError, match="base_url is not set"):
        HttpEInvoiceProvider.from_settings(EInvoiceSettings())


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"timeout_s": 60, "claim_timeout_s": 100}, "claim_timeout_s"),
        ({"retry_initial_s": 600, "retry_max_s": 60}, "retry_max_s"),
        ({"username": "urenco"}, "username and password"),
        ({"base_url": "http://127.0.0.1:9098"}, "api_key"),
        ({"base_url": "ftp://x"}, "base_url"),
        ({"provider_tax_code": "12345"}, "provider_tax_code"),
        ({"max_attempts": 0}, "max_attempts"),
    ],
)
def test_bad_settings_fail_naming_the_field(values: dict[str, object], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        EInvoiceSettings(**values)


async def test_a_fake_with_a_journal_remembers_what_it_was_sent_across_a_restart(
    submission: Submission, tmp_path: Path
) -> None:
    """The demo's fake keeps a journal: invoices an earlier run sent are still known (a new,
    forgetful fake answered 404 to every status question about them, for ever)."""
    journal = tmp_path / "fake-einvoice.jsonl"
    async with (
        FakeEInvoiceProvider(journal=journal) as fake,
        HttpEInvoiceProvider.from_settings(fake.settings()) as provider,
    ):
        accepted = await provider.submit(submission)
    with journal.open("a", encoding="utf-8") as out:
        out.write('{"provider_ref": "FAKE-0000')  # a line cut short by a kill
    async with FakeEInvoiceProvider(journal=journal) as fake:
        async with HttpEInvoiceProvider.from_settings(fake.settings()) as provider:
            coded = await provider.status(accepted.provider_ref)
            assert coded.state is ProviderState.CODED
            assert await provider.submit(submission) == coded  # the same submission
            other = dataclasses.replace(submission, xml=submission.xml.replace(b"Nguy", b"Ngy"))
            with pytest.raises(ProviderRejected, match="HTTP 409"):
                await provider.submit(other)
        assert [s.provider_ref for s in fake.submissions] == [accepted.provider_ref]
    async with FakeEInvoiceProvider(journal=journal) as fake:  # the coding was kept too
        assert fake.submissions[0].authority_code == coded.authority_code
        assert fake.submissions[0].xml == submission.xml
