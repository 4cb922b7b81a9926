"""The office's invoices page in a real browser against the API and PostgreSQL.

Chromium (Debian's, through Playwright; the live map's fixture and skip reason) opens
``/invoices`` served by uvicorn in this process, for a company with its seller, a
household tariff, series 1C26TAA and three households. What the accountant sees is read
through ``data-testid``s.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from accounts import Role
from api.context import ApiContext
from api.server import http_app
from broker import free_port
from sanitrack.clock import ManualClock
from sanitrack.settings import ApiSettings
from storage import Pool, PositionsBackend
from tests.api import test_page
from tests.api.conftest import NOW, TenantWorld, accounts_authenticator, build_tenant
from tests.api.test_invoice_routes import make_billed
from tests.api.test_page import _why_no_browser
from tests.support import truncate

if TYPE_CHECKING:
    from playwright.async_api import (
        Browser,
        BrowserContext,
        ConsoleMessage,
        Page,
        Request,
        Response,
    )

browser = test_page.browser
pytestmark = pytest.mark.skipif(
    _why_no_browser() is not None, reason=_why_no_browser() or "browser available"
)


@dataclass
class Office:
    base_url: str
    world: TenantWorld


@pytest.fixture
async def office(pool: Pool) -> AsyncIterator[Office]:
    import uvicorn

    async with pool.connection() as conn:
        await truncate(conn, "users", "api_tokens", "street_map")
    world = await build_tenant(pool, "tenant-a", NOW)
    await make_billed(pool, world)
    clock = ManualClock(NOW)  # 4 December 2026: November is billed
    ctx = ApiContext(pool, clock, ApiSettings(), PositionsBackend.NATIVE)
    app = http_app(ctx, accounts_authenticator(pool, clock), _healthy, [])
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve(), name="invoices page under test")
    for _ in range(500):  # up to 10 s
        if server.started:
            break
        await asyncio.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield Office(f"http://127.0.0.1:{port}", world)
    finally:
        server.should_exit = True
        await task


async def _healthy() -> dict[str, Any]:
    return {"ok": True}


@dataclass
class Accountant:
    """A browser tab on the invoices page, with everything that went wrong in it."""

    context: BrowserContext
    office: Office
    page: Page | None = None
    problems: list[str] = field(default_factory=list)

    async def open(self, role: Role = Role.ACCOUNTANT) -> Page:
        page = await self.context.new_page()
        self.page = page

        def on_console(message: ConsoleMessage) -> None:
            if message.type in ("error", "warning"):
                self.problems.append(f"console {message.type}: {message.text}")

        def on_failed(request: Request) -> None:
            self.problems.append(f"request failed: {request.method} {request.url}")

        def on_response(response: Response) -> None:
            if response.status >= 400:
                self.problems.append(f"HTTP {response.status}: {response.url}")

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("requestfailed", on_failed)
        page.on("response", on_response)
        # Issuing asks "are you sure?": the accountant is.
        page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
        token = self.office.world.tokens[role]
        await page.goto(f"{self.office.base_url}/invoices#token={token}")
        await page.get_by_test_id("tab-runs").wait_for()
        return page


@pytest.fixture
async def accountant(browser: Browser, office: Office) -> AsyncIterator[Accountant]:
    context = await browser.new_context(
        viewport={"width": 1600, "height": 950}, timezone_id="UTC", locale="vi-VN"
    )
    yield Accountant(context, office)
    await context.close()


async def test_a_run_from_the_page_drafts_issue_numbers_and_a_cancel_shows(
    accountant: Accountant,
) -> None:
    page = await accountant.open()
    assert await page.get_attribute("html", "lang") == "vi"
    series = page.get_by_test_id("run-series")
    await series.locator("option", has_text="1C26TAA").wait_for(state="attached")
    await page.get_by_test_id("run-kind").select_option("monthly")
    await page.get_by_test_id("run-start").fill("2026-11")
    await page.get_by_test_id("run-submit").click()
    summary = page.get_by_test_id("run-summary")
    await summary.wait_for()
    assert await summary.get_attribute("data-drafted") == "3"
    assert "58.320 ₫" in await summary.inner_text()  # 54,000 + 8 % VAT

    await page.get_by_test_id("run-show-invoices").click()
    rows = page.get_by_test_id("invoice-row")
    await rows.nth(2).wait_for()
    assert await rows.count() == 3
    assert await page.get_by_test_id("invoice-list").get_by_text("Nháp").count() == 3
    first = rows.last  # the lowest id: newest first
    invoice_id = await first.get_attribute("data-invoice-id")
    await first.click()
    detail = page.get_by_test_id("invoice-detail")
    await detail.get_by_test_id("detail-number").filter(has_text="chưa có số").wait_for()
    await detail.get_by_test_id("action-issue").click()
    await detail.get_by_test_id("detail-number").filter(has_text="00000001").wait_for()
    assert await detail.get_by_test_id("invoice-status").inner_text() == "Đã phát hành"
    row = page.locator(f"[data-testid=invoice-row][data-invoice-id='{invoice_id}']")
    await row.get_by_test_id("invoice-number").filter(has_text="00000001").wait_for()
    assert await row.get_attribute("data-status") == "issued"
    async with page.expect_download() as download:
        await detail.get_by_test_id("invoice-pdf").click()
    assert (await download.value).suggested_filename == "hoa-don-1C26TAA-00000001.pdf"

    await detail.get_by_test_id("action-cancel").locator("summary").click()
    form = detail.get_by_test_id("cancel-form")
    await form.get_by_test_id("reason").fill("Sai số khẩu")
    await form.get_by_test_id("cancel-submit").click()
    await detail.get_by_test_id("invoice-status").filter(has_text="Đã hủy").wait_for()
    await row.get_by_test_id("invoice-status").filter(has_text="Đã hủy").wait_for()
    await detail.get_by_test_id("invoice-notices").get_by_text("Sai số khẩu").wait_for()

    # Back on the runs, the two drafts left are issued at once, numbered 2 and 3.
    await page.get_by_test_id("tab-runs").click()
    await page.get_by_test_id("runs-table").get_by_test_id("run-issue-all").click()
    issued = page.get_by_test_id("run-issued")
    await issued.wait_for()
    text = await issued.inner_text()
    assert "Đã phát hành 2 hóa đơn" in text
    assert "1C26TAA số 2–3" in text

    # The period's issued invoices print as one PDF (the cancelled one left out).
    await page.get_by_test_id("tab-list").click()
    await page.get_by_test_id("filter-period").fill("2026-11")
    async with page.expect_download() as printed:
        await page.get_by_test_id("print-invoices").click()
    assert (await printed.value).suggested_filename == "in-hoa-don.pdf"
    await page.get_by_text("Đã in 2 hóa đơn (0 bản in lại)").wait_for()
    assert accountant.problems == []


async def test_a_cashier_reads_but_is_offered_no_action(accountant: Accountant) -> None:
    page = await accountant.open(Role.CASHIER)
    assert not await page.get_by_test_id("run-form").is_visible()
    await page.get_by_test_id("tab-setup").click()
    await page.get_by_test_id("series-table").get_by_text("1C26TAA").wait_for()
    assert await page.get_by_test_id("series-form").count() == 0
    await page.get_by_test_id("lang-switch").select_option("en")
    await page.get_by_test_id("tab-list").filter(has_text="Invoices").wait_for()
    assert accountant.problems == []  # nothing asked that a cashier may not read


async def test_a_collector_is_told_the_page_is_the_offices(accountant: Accountant) -> None:
    page = await accountant.open(Role.COLLECTOR)
    await page.locator("#fatal-text").filter(has_text="dành cho văn phòng").wait_for()
    assert accountant.problems == []


async def test_the_page_is_served_with_its_policy(office: Office) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=office.base_url) as client:
        page = await client.get("/invoices")
        script = await client.get("/static/invoices.js")
    assert page.status_code == 200
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert 'src="/static/invoices.js"' in page.text
    assert script.status_code == 200
