"""The office's customer book page in a real browser against the API and PostgreSQL.

Chromium (Debian's, through Playwright) opens ``/customers`` served by uvicorn in this
process; the company has a 2,100-point neighbourhood, enough for the map to answer with
clusters when zoomed out. What the clerk sees is read through ``data-testid``s and the
read-only ``window.sanitrackCustomers``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

import customers
from accounts import Role
from api import SessionTokens, StaticTokens
from api.context import ApiContext
from api.server import http_app
from broker import free_port
from sanitrack.clock import SystemClock
from sanitrack.settings import ApiSettings
from storage import Pool, PositionsBackend
from tests.api import test_page
from tests.api.conftest import PASSWORD, TenantWorld, build_tenant
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

# Where the map opens for a company without a street map (api/routes_map.py).
CENTRE = (20.9714, 105.7788)
GRID_COLUMNS, GRID_ROWS, GRID_STEP_DEG = 50, 42, 0.0003  # 2,100 points, 1.5 km x 1.3 km


# The same Chromium, launched once per module, and the same skip with its reason.
browser = test_page.browser
pytestmark = pytest.mark.skipif(
    _why_no_browser() is not None, reason=_why_no_browser() or "browser available"
)


@dataclass
class Office:
    """The API serving the page, one company with its book, and its clerks' tokens."""

    base_url: str
    world: TenantWorld
    customer_id: int
    point_id: int

    def client(self, role: Role) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=f"{self.base_url}/api/v1", headers=self.world.auth(role), timeout=30
        )


async def _neighbourhood(pool: Pool, tenant_id: int) -> None:
    south, west = (
        CENTRE[0] - GRID_ROWS * GRID_STEP_DEG / 2,
        CENTRE[1] - GRID_COLUMNS * GRID_STEP_DEG / 2,
    )
    async with pool.connection() as conn:
        await customers.ensure_service_points(
            conn,
            tenant_id,
            [
                customers.NewServicePoint(
                    code=f"HGD-{row:02d}-{column:02d}",
                    name=f"Hộ gia đình {row}-{column}",
                    kind=customers.CustomerKind.HOUSEHOLD,
                    address=f"Số {column + 1} ngõ {row + 1} Văn Quán",
                    lat=south + row * GRID_STEP_DEG,
                    lon=west + column * GRID_STEP_DEG,
                )
                for row in range(GRID_ROWS)
                for column in range(GRID_COLUMNS)
            ],
        )


@pytest.fixture
async def office(pool: Pool) -> AsyncIterator[Office]:
    import uvicorn

    async with pool.connection() as conn:
        await truncate(conn, "users", "api_tokens", "street_map")
    world = await build_tenant(pool, "tenant-a", dt.datetime.now(dt.UTC))
    await _neighbourhood(pool, world.tenant_id)
    clock = SystemClock()
    ctx = ApiContext(pool, clock, ApiSettings(), PositionsBackend.NATIVE)
    app = http_app(ctx, SessionTokens(pool, clock, fallback=StaticTokens({})), _healthy, [])
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve(), name="customer pages under test")
    for _ in range(500):  # up to 10 s
        if server.started:
            break
        await asyncio.sleep(0.02)
    assert server.started, "uvicorn did not start"
    base_url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(
        base_url=f"{base_url}/api/v1", headers=world.auth(Role.ACCOUNTANT)
    ) as accountant:
        created = await accountant.post(
            "/customers",
            json={
                "code": "KH-0001",
                "name": "Nguyễn Văn A",
                "kind": "household",
                "phones": ["0912 345 678"],
                "points": [
                    {
                        "code": "KH-0001",
                        "address": "Số 12 Nguyễn Trãi, Hà Đông",
                        "position": {"lat": CENTRE[0], "lon": CENTRE[1] + 0.00015},
                        "so_khau": 4,
                        "valid_from": "2026-01-01",
                    }
                ],
            },
        )
        assert created.status_code == 201, created.text
    customer = created.json()
    try:
        yield Office(base_url, world, customer["id"], customer["points"][0]["id"])
    finally:
        server.should_exit = True
        await task


async def _healthy() -> dict[str, Any]:
    return {"ok": True}


@dataclass
class Clerk:
    """A browser tab on the customer book, with everything that went wrong in it."""

    context: BrowserContext
    office: Office
    page: Page | None = None
    response: Response | None = None  # of the last opening
    problems: list[str] = field(default_factory=list)

    @property
    def tab(self) -> Page:
        assert self.page is not None, "open the page first"
        return self.page

    async def open(self, role: Role = Role.ADMIN, *, token: bool = True, wait: bool = True) -> Page:
        """The page in a new tab (as another person: a new sign-in), the old tab closed."""
        old, self.page = self.page, await self.context.new_page()
        self.watch(self.page)
        if old is not None:
            await old.close()
        fragment = f"#token={self.office.world.tokens[role]}" if token else ""
        self.response = await self.page.goto(f"{self.office.base_url}/customers{fragment}")
        if token and wait:
            await self.page.get_by_test_id("results").locator("tbody tr").first.wait_for()
        return self.page

    def watch(self, page: Page) -> None:
        def note(problem: str) -> None:
            if page is self.page:  # a closed tab's aborted requests are not the page's fault
                self.problems.append(problem)

        def on_console(message: ConsoleMessage) -> None:
            if message.type in ("error", "warning"):
                note(f"console {message.type}: {message.text}")

        def on_failed(request: Request) -> None:
            note(f"request failed: {request.method} {request.url} {request.failure}")

        def on_response(response: Response) -> None:
            if response.status >= 400:
                note(f"HTTP {response.status}: {response.request.method} {response.url}")

        page.on("console", on_console)
        page.on("pageerror", lambda error: note(f"page error: {error}"))
        page.on("requestfailed", on_failed)
        page.on("response", on_response)

    async def map_state(self) -> dict[str, Any]:
        state: dict[str, Any] = await self.tab.evaluate("window.sanitrackCustomers.mapState()")
        return state


@pytest.fixture
async def clerk(browser: Browser, office: Office) -> AsyncIterator[Clerk]:
    context = await browser.new_context(
        viewport={"width": 1600, "height": 950}, timezone_id="UTC", locale="vi-VN"
    )
    yield Clerk(context, office)
    await context.close()


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.05)


# ---------------------------------------------------------------- tests


async def test_the_page_logs_in_loads_clean_and_finds_names_typed_without_accents(
    clerk: Clerk,
) -> None:
    page = await clerk.open(token=False)
    response = clerk.response
    assert response is not None
    headers = await response.all_headers()
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["cache-control"] == "no-cache"
    form = page.get_by_test_id("login-form")
    await form.locator("[name=tenant]").fill(clerk.office.world.slug)
    await form.locator("[name=username]").fill("cashier")  # reads the book, edits nothing
    await form.locator("[name=password]").fill(PASSWORD)
    await form.locator("button[type=submit]").click()
    rows = page.get_by_test_id("result-row")
    await rows.first.wait_for()
    assert await page.get_attribute("html", "lang") == "vi"

    search = page.get_by_test_id("customer-search")
    await search.press_sequentially("nguyen van a", delay=30)  # typed, without diacritics
    found = rows.filter(has_text="Nguyễn Văn A")
    await found.wait_for()
    await eventually(lambda: _one(rows), 5, "only the customer in the results")
    await found.click()
    panel = page.get_by_test_id("detail-panel")
    await panel.get_by_role("heading", name="Nguyễn Văn A").wait_for()
    # A cashier sees the forms but cannot save them.
    assert await panel.get_by_test_id("customer-form-save").count() == 0
    assert await page.get_by_test_id("approve-button").count() == 0

    await page.get_by_test_id("lang-switch").select_option("en")
    assert await page.locator("#search-title").inner_text() == "Customer book"
    await panel.get_by_text("Change history").wait_for()
    # The map's configuration and the staff list are not a cashier's to read: the page
    # does not ask for them (the map opens at its default place), so nothing failed.
    assert clerk.problems == []


async def _one(rows: Any) -> bool:
    return bool(await rows.count() == 1)


async def test_the_map_shows_clusters_then_points_when_zoomed_in(clerk: Clerk) -> None:
    page = await clerk.open()

    async def clustered() -> bool:
        state = await clerk.map_state()
        return bool(state.get("clusters", 0) > 0 and state.get("points") == 0)

    await eventually(clustered, 10, "clusters on the zoomed-out map")
    cluster = page.get_by_test_id("cluster-marker")
    counts = [int(c) for c in await cluster.evaluate_all("(all) => all.map(c => c.dataset.count)")]
    assert sum(counts) >= GRID_COLUMNS * GRID_ROWS
    assert await page.get_by_test_id("map-note").inner_text()

    before = (await clerk.map_state())["refreshed"]
    await cluster.nth(len(counts) // 2).click()  # zooms in two levels around it

    async def points_drawn() -> bool:
        state = await clerk.map_state()
        return bool(state["refreshed"] > before and state["points"] > 0 and state["clusters"] == 0)

    await eventually(points_drawn, 10, "points after zooming in")
    drawn = page.locator("path.cust-point")
    assert await drawn.count() == (await clerk.map_state())["points"]
    assert await drawn.first.get_attribute("class") is not None
    assert "status-active" in (await drawn.first.get_attribute("class") or "")

    # A filter applies to the map as to the table: nobody is suspended.
    await page.get_by_test_id("filter-status").select_option("suspended")
    await eventually(
        lambda: _map_points_are(clerk, 0), 10, "no point on the map with the suspended filter"
    )
    await page.get_by_test_id("results").get_by_text("Không có khách hàng nào khớp").wait_for()
    assert clerk.problems == []


async def _map_points_are(clerk: Clerk, n: int) -> bool:
    state = await clerk.map_state()
    return bool(state["points"] == n and state["clusters"] == 0)


async def test_an_edit_saves_shows_in_history_and_a_stale_one_asks_for_a_reload(
    clerk: Clerk,
) -> None:
    page = await clerk.open(Role.ACCOUNTANT)
    await page.get_by_test_id("customer-search").fill("KH-0001")
    row = page.get_by_test_id("result-row").filter(has_text="Nguyễn Văn A")
    await row.click()
    panel = page.get_by_test_id("detail-panel")
    form = panel.get_by_test_id("customer-form")
    await form.locator("[name=contact_name]").fill("Chị Hoa")
    await form.get_by_test_id("customer-form-save").click()
    entry = panel.get_by_test_id("history-entry").filter(has_text="Chị Hoa")
    await entry.wait_for()
    assert await entry.get_attribute("data-action") == "update"
    async with clerk.office.client(Role.ADMIN) as admin:
        stored = (await admin.get(f"/customers/{clerk.office.customer_id}")).json()
        assert stored["contact_name"] == "Chị Hoa"
        # Someone else saves meanwhile; the clerk's next save was made on the old revision.
        changed = await admin.patch(
            f"/customers/{clerk.office.customer_id}",
            json={"revision": stored["revision"], "changes": {"email": "a@example.vn"}},
        )
        assert changed.status_code == 200
    await form.locator("[name=contact_name]").fill("Anh Nam")
    await form.get_by_test_id("customer-form-save").click()
    stale = page.get_by_test_id("stale-warning")
    await stale.wait_for()
    assert "người khác" in await stale.inner_text()
    assert [p for p in clerk.problems if "409" not in p] == []
    clerk.problems.clear()
    await page.get_by_test_id("detail-reload").click()
    await stale.wait_for(state="hidden")
    assert await form.locator("[name=email]").input_value() == "a@example.vn"
    assert await form.locator("[name=contact_name]").input_value() == "Chị Hoa"
    assert clerk.problems == []


async def test_a_request_submitted_in_the_page_is_approved_in_the_list_and_applies(
    clerk: Clerk,
) -> None:
    # The accountant asks for the change in the page; the admin approves it in the list.
    page = await clerk.open(Role.ACCOUNTANT)
    await page.get_by_test_id("customer-search").fill("nguyen van a")
    await page.get_by_test_id("result-row").filter(has_text="Nguyễn Văn A").click()
    panel = page.get_by_test_id("detail-panel")
    await panel.get_by_test_id("request-new").locator("summary").click()
    form = panel.get_by_test_id("request-form")
    await form.get_by_test_id("request-field").select_option("so_khau")
    await form.get_by_test_id("request-value").fill("5")
    await form.get_by_test_id("request-date").fill("2026-11-01")
    await form.get_by_test_id("request-reason").fill("Sinh thêm con")
    from playwright.async_api import FilePayload

    photo = FilePayload(name="so-ho-khau.jpg", mimeType="image/jpeg", buffer=b"\xff\xd8 photo")
    await form.get_by_test_id("request-evidence").set_input_files(files=[photo])
    await form.get_by_test_id("request-submit").click()
    mine = panel.get_by_test_id("customer-requests").get_by_test_id("change-request")
    await mine.filter(has_text="Sinh thêm con").wait_for()
    request_id = int(await mine.first.get_attribute("data-request-id") or 0)
    async with clerk.office.client(Role.ADMIN) as admin:
        stored = (await admin.get(f"/change-requests/{request_id}")).json()
    assert stored["diff"] == {"so_khau": {"from": 4, "to": 5}}
    assert [e["filename"] for e in stored["evidence"]] == ["so-ho-khau.jpg"]
    # Four eyes: the accountant's own approval is refused, with the server's reason.
    approvals = page.get_by_test_id("approvals")
    item = approvals.locator(f"[data-request-id='{request_id}']")
    await item.get_by_test_id("approve-button").click()
    await item.locator(".form-error").filter(has_text="other than its submitter").wait_for()
    assert [p for p in clerk.problems if "409" not in p] == []
    clerk.problems.clear()

    page = await clerk.open(Role.ADMIN)
    item = page.get_by_test_id("approvals").locator(f"[data-request-id='{request_id}']")
    await item.get_by_text("Nguyễn Văn A").wait_for()
    await item.locator("input[name=note]").fill("Đã xem sổ hộ khẩu")
    await item.get_by_test_id("approve-button").click()
    await item.wait_for(state="detached")
    async with clerk.office.client(Role.ADMIN) as admin:
        decided = (await admin.get(f"/change-requests/{request_id}")).json()
        point = (await admin.get(f"/service-points/{clerk.office.point_id}")).json()
    assert decided["status"] == "applied"
    assert decided["decision_note"] == "Đã xem sổ hộ khẩu"
    assert point["so_khau"] == 5
    assert clerk.problems == []


async def test_a_collectors_login_is_told_the_book_is_the_offices(clerk: Clerk) -> None:
    page = await clerk.open(Role.COLLECTOR, wait=False)
    message = page.locator("#fatal-text")
    await message.filter(has_text="dành cho văn phòng").wait_for()
    assert await page.get_by_test_id("logout-button").is_visible()
    assert clerk.problems == []  # the page asked for nothing a collector may not read


async def test_a_spreadsheet_chosen_in_the_page_is_imported_and_its_bad_rows_listed(
    clerk: Clerk, tmp_path: Path
) -> None:
    page = await clerk.open(Role.ACCOUNTANT)
    book = tmp_path / "so-khach-hang.csv"
    book.write_text(
        "Mã KH,Tên khách hàng,Loại,Địa chỉ,Vĩ độ,Kinh độ,Số khẩu\n"
        "KH-NEW,Lê Thị Hoa,hộ gia đình,Số 7 Lê Lợi,20.9713,105.7789,2\n"
        "KH-BAD,Lê Văn Sai,hộ gia đình,Số 9 Lê Lợi,,105.7789,2\n",
        encoding="utf-8",
    )
    await page.get_by_test_id("import-file").set_input_files(str(book))
    report = page.get_by_test_id("import-report")
    await report.get_by_text("1 mới").wait_for()
    assert "Dòng 3, Vĩ độ" in await report.inner_text()
    search = page.get_by_test_id("customer-search")
    await search.fill("le thi hoa")
    await page.get_by_test_id("result-row").get_by_text("KH-NEW").wait_for()
    async with page.expect_download() as download:
        await page.get_by_test_id("export-xlsx").click()
    assert (await download.value).suggested_filename.endswith(".xlsx")
    assert clerk.problems == []


async def test_a_cashier_exports_but_cannot_import(clerk: Clerk) -> None:
    page = await clerk.open(Role.CASHIER)
    assert await page.get_by_test_id("export-xlsx").is_visible()
    assert not await page.get_by_test_id("import-button").is_visible()
