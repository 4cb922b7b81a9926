"""Fixtures of the billing tests: the e-invoice provider's fake and a client of it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from billing.einvoice import FakeEInvoiceProvider, HttpEInvoiceProvider
from tests.billing.einvoice_support import settings_for


@pytest.fixture
async def fake() -> AsyncIterator[FakeEInvoiceProvider]:
    async with FakeEInvoiceProvider() as fake:
        yield fake


@pytest.fixture
async def provider(fake: FakeEInvoiceProvider) -> AsyncIterator[HttpEInvoiceProvider]:
    async with HttpEInvoiceProvider.from_settings(settings_for(fake)) as provider:
        yield provider
