"""The dispatcher's live map in a real browser against the whole running system.

Chromium (Debian's, through Playwright) opens the page served by the stack's API; fixes are
published over MQTT as a truck would, and what the dispatcher sees is read from the page:
markers through ``window.sanitrack``, alerts and the track through their ``data-testid``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import importlib.util
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.api.conftest import LiveStack, fix

if TYPE_CHECKING:
    from playwright.async_api import Browser, ConsoleMessage, Locator, Page, Request, Response

CHROMIUM = Path("/usr/bin/chromium")
# The browser runs in UTC on purpose: the page must show and take times in the company's
# zone (Asia/Ho_Chi_Minh), whatever zone the dispatcher's computer is set to.
BROWSER_TIMEZONE = "UTC"


def _why_no_browser() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed: pip install playwright"
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM}: apt-get install chromium"
    return None


pytestmark = pytest.mark.skipif(
    _why_no_browser() is not None, reason=_why_no_browser() or "browser available"
)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True
        )
        yield launched
        await launched.close()


@dataclass
class Dispatcher:
    """A browser tab on the live map, with everything that went wrong in it."""

    page: Page
    stack: LiveStack
    problems: list[str] = field(default_factory=list)

    async def open(self, with_token: bool = True) -> None:
        """Open the map; with the token of the demo's link, or at the login form."""
        fragment = f"#token={self.stack.token}" if with_token else ""
        await self.page.goto(f"{self.stack.base_url}/{fragment}")
        if with_token:
            await self.until_live()

    async def until_live(self) -> None:
        status = self.page.get_by_test_id("connection-status")
        await status.and_(self.page.locator("[data-state=live]")).wait_for(timeout=10_000)

    async def helper(self, expression: str) -> Any:
        return await self.page.evaluate(f"window.sanitrack.{expression}")

    def marker(self, device_id: int) -> Locator:
        return self.page.locator(f"[data-testid=vehicle-marker][data-device-id='{device_id}']")


@pytest.fixture
async def dispatcher(browser: Browser, live_stack: LiveStack) -> AsyncIterator[Dispatcher]:
    context = await browser.new_context(
        viewport={"width": 1400, "height": 900}, timezone_id=BROWSER_TIMEZONE, locale="vi-VN"
    )
    page = await context.new_page()
    tab = Dispatcher(page, live_stack)

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            tab.problems.append(f"console {message.type}: {message.text}")

    def on_failed(request: Request) -> None:
        tab.problems.append(f"request failed: {request.method} {request.url} {request.failure}")

    def on_response(response: Response) -> None:
        if response.status >= 400:
            tab.problems.append(f"HTTP {response.status}: {response.request.method} {response.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: tab.problems.append(f"page error: {error}"))
    page.on("requestfailed", on_failed)
    page.on("response", on_response)
    yield tab
    # Closed before the stack stops: a page left open would only log its reconnections.
    await context.close()


@contextlib.asynccontextmanager
async def api_client(stack: LiveStack) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {stack.token}"}
    async with httpx.AsyncClient(base_url=stack.base_url, headers=headers) as client:
        yield client


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.05)


def drive_east(end: dt.datetime, count: int, every_s: int, lat: float) -> list[dict[str, Any]]:
    """``count`` fixes ``every_s`` apart up to ``end``, eastward along latitude ``lat``."""
    return [
        fix(end - dt.timedelta(seconds=every_s * (count - 1 - n)), lat, 105.7702 + 0.0003 * n, 11)
        for n in range(count)
    ]


# ---------------------------------------------------------------- tests


async def test_the_page_loads_clean_and_the_login_form_logs_in(dispatcher: Dispatcher) -> None:
    response = await dispatcher.page.goto(f"{dispatcher.stack.base_url}/")
    assert response is not None
    headers = await response.all_headers()
    assert headers["cache-control"] == "no-cache"
    policy = headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy
    form = dispatcher.page.get_by_test_id("login-form")
    await form.wait_for()
    await form.locator("[name=tenant]").fill(dispatcher.stack.tenant)
    await form.locator("[name=username]").fill(dispatcher.stack.username)
    await form.locator("[name=password]").fill("not the password")
    await form.locator("button[type=submit]").click()
    error = dispatcher.page.get_by_test_id("login-error")
    await error.filter(has_text="Sai").wait_for()
    # The wrong password's 401 is the one failed request this test expects.
    assert dispatcher.problems
    assert all("401" in problem for problem in dispatcher.problems)
    dispatcher.problems.clear()

    await form.locator("[name=password]").fill(dispatcher.stack.password)  # Vietnamese: UTF-8
    await form.locator("button[type=submit]").click()
    await dispatcher.until_live()
    assert await form.is_hidden()
    await dispatcher.page.locator("[data-testid=map].leaflet-container").wait_for()
    assert await dispatcher.page.evaluate("localStorage.getItem('sanitrack.token')")
    routes = dispatcher.page.get_by_test_id("route-select").locator("option")
    await routes.filter(has_text="Tuyến Quang Trung").wait_for(state="attached")
    assert dispatcher.problems == []


async def test_a_published_fix_moves_its_marker(dispatcher: Dispatcher) -> None:
    stack = dispatcher.stack
    await dispatcher.open()
    assert dispatcher.page.url == f"{stack.base_url}/"  # the token left the address bar
    first = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=10)
    await stack.publish([fix(first, 20.97001, 105.77101)])
    marker = dispatcher.marker(stack.device_id)
    await marker.wait_for()
    assert await marker.get_attribute("data-vehicle-id") == str(stack.vehicle_id)

    await stack.publish([fix(first + dt.timedelta(seconds=5), 20.97012, 105.77345)])

    async def moved() -> bool:
        drawn_at = await dispatcher.helper(f"markerPosition({stack.device_id})")
        return bool(drawn_at == [20.97012, 105.77345])

    await eventually(moved, 5, "the marker at the published position")
    assert await marker.get_attribute("data-state") == "moving"
    assert dispatcher.problems == []


async def test_an_off_route_alert_shows_within_a_second_and_is_acknowledged(
    dispatcher: Dispatcher,
) -> None:
    stack = dispatcher.stack
    await dispatcher.open()
    # When each alert item first appears, by the browser's clock (the machine's).
    await dispatcher.page.evaluate(
        """() => {
          window.seenAt = {};
          new MutationObserver(() => {
            for (const item of document.querySelectorAll('[data-testid=alert-item]')) {
              window.seenAt[item.dataset.alertId] ??= Date.now();
            }
          }).observe(document.getElementById('alert-list'), {childList: true});
        }"""
    )
    now = dt.datetime.now(dt.UTC)
    on_route = drive_east(now - dt.timedelta(seconds=60), 12, 5, 20.9700)
    off_route = drive_east(now, 12, 5, 20.9720)  # 220 m north of the path
    await stack.publish(on_route + off_route)

    async def stored() -> bool:
        async with stack.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT id, created_at FROM alerts WHERE kind = 'wrong_route' AND vehicle_id = %s",
                (stack.vehicle_id,),
            )
            rows = await cursor.fetchall()
        found.extend(rows)
        return bool(rows)

    found: list[tuple[int, dt.datetime]] = []
    await eventually(stored, 15, "a wrong_route alert stored")
    alert_id, created_at = found[0]
    item = dispatcher.page.locator(f"[data-testid=alert-item][data-alert-id='{alert_id}']")
    await item.wait_for(timeout=5000)
    seen_ms = await dispatcher.page.evaluate(f"window.seenAt['{alert_id}']")
    assert seen_ms is not None
    assert seen_ms - created_at.timestamp() * 1000 <= 1000
    assert alert_id in await dispatcher.helper("alertIds()")
    assert await item.get_attribute("data-state") == "open"
    assert "Đi sai tuyến" in await item.inner_text()
    counter = dispatcher.page.locator("[data-testid=alert-counter][data-kind=wrong_route]")
    await counter.wait_for()
    marker = dispatcher.marker(stack.device_id)
    assert "alert-open" in (await marker.get_attribute("class") or "")

    await item.get_by_test_id("ack-button").click()
    await item.locator("input[name=note]").fill("Đã gọi lái xe")
    await item.get_by_test_id("action-confirm").click()
    await dispatcher.page.locator(
        f"[data-testid=alert-item][data-alert-id='{alert_id}'][data-state=acknowledged]"
    ).wait_for(timeout=5000)
    assert "Đã gọi lái xe" in await item.inner_text()
    async with api_client(stack) as api:
        stored_alert = (await api.get(f"/api/v1/alerts/{alert_id}")).json()
    assert stored_alert["state"] == "acknowledged"
    assert stored_alert["acknowledge_note"] == "Đã gọi lái xe"
    assert dispatcher.problems == []


async def test_track_replay_draws_the_stored_track(dispatcher: Dispatcher) -> None:
    stack = dispatcher.stack
    end = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=5)
    fixes = drive_east(end, 24, 10, 20.9700)  # four minutes on the route, a fix each 10 s
    await stack.publish(fixes)

    async def all_stored() -> bool:
        async with stack.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT count(*) FROM positions WHERE device_id = %s", (stack.device_id,)
            )
            row = await cursor.fetchone()
        return row is not None and row[0] == len(fixes)

    await eventually(all_stored, 10, "the fixes stored")
    await dispatcher.open()
    marker = dispatcher.marker(stack.device_id)
    await marker.click()
    panel = dispatcher.page.get_by_test_id("vehicle-panel")
    await panel.wait_for()
    assert await panel.get_by_test_id("track-from").input_value()  # the last two hours
    async with dispatcher.page.expect_response(lambda r: "/track?" in r.url) as answer:
        await panel.get_by_test_id("track-draw").click()
    response = await answer.value
    track = await response.json()
    # The page asked for buckets finer than the fixes: one point per stored fix.
    assert track["bucket_s"] <= 10
    assert len(track["points"]) == len(fixes)
    line = dispatcher.page.get_by_test_id("track-line")
    await line.wait_for(state="attached")
    assert await line.get_attribute("d")
    assert await dispatcher.helper("trackPointCount()") == len(fixes)
    async with api_client(stack) as api:
        again = (await api.get(response.url.removeprefix(stack.base_url))).json()
    assert len(again["points"]) == len(fixes)
    assert dispatcher.problems == []


async def test_the_language_switch_changes_the_ui_text(dispatcher: Dispatcher) -> None:
    await dispatcher.open()
    heading = dispatcher.page.locator("#alerts-title")
    assert await heading.inner_text() == "Cảnh báo"
    assert await dispatcher.page.get_attribute("html", "lang") == "vi"
    await dispatcher.page.get_by_test_id("lang-switch").select_option("en")
    assert await heading.inner_text() == "Alerts"
    assert await dispatcher.page.get_attribute("html", "lang") == "en"
    status = dispatcher.page.get_by_test_id("connection-status")
    assert await status.inner_text() == "Live"
    # The choice is kept: a reload comes back in English.
    await dispatcher.page.reload()
    await dispatcher.until_live()
    assert await dispatcher.page.locator("#alerts-title").inner_text() == "Alerts"
    await dispatcher.page.get_by_test_id("lang-switch").select_option("vi")
    assert await heading.inner_text() == "Cảnh báo"
    assert dispatcher.problems == []
