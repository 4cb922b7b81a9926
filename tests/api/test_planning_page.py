"""Route planning on the dispatcher's page, in a real browser against the whole running system
(test_page's browser, stack and tab, with their checks for console errors and failed requests).

The stack's company gets what planning needs: a depot, the truck's capacity and driver, and
more service points along its streets, one of them a market with more waste than any truck
carries. A dispatcher plans tomorrow from the page and reads the plan back (figures, routes on
the map and in the route list, the stop left out and why, the driver's task); an accountant
reads plans but has no button to make one; a blocked road is picked on the map for a re-plan.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import accounts
import customers
import fleet
from accounts import Role
from tests.api import test_page
from tests.api.conftest import LiveStack
from tests.api.test_page import Dispatcher, api_client

if TYPE_CHECKING:
    from playwright.async_api import Page

# test_page's fixtures, used as they are: one way to start the stack and open the page.
browser = test_page.browser
dispatcher = test_page.dispatcher
pytestmark = test_page.pytestmark

LOCAL_ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
VEHICLE_CODE = "29C-100.01"  # the stack's truck
DRIVER = "Nguyễn Văn Lái"
# West end of Đường Quang Trung (the stack's street along lat 20.97, where its points are).
DEPOT_RING = [
    (20.9697, 105.7654),
    (20.9697, 105.7662),
    (20.9703, 105.7662),
    (20.9703, 105.7654),
    (20.9697, 105.7654),
]
MORE_POINTS = [
    ("KH-QT-3", "Quán phở Quang Trung", 20.9701, 105.7686),
    ("KH-QT-4", "Hộ gia đình Quang Trung 4", 20.9699, 105.7738),
    ("KH-QT-5", "Cửa hàng tạp hoá Minh Anh", 20.9701, 105.7791),
    ("KH-QT-6", "Hộ gia đình Quang Trung 6", 20.9699, 105.7832),
]
MARKET = ("KH-CHO", "Chợ Hà Đông", 20.9699, 105.7722)  # 90 t a day: more than any truck
WASTE_KG = 150  # each household's day
CAPACITY_KG = 800  # so the truck unloads once on the way: two trips


def local_day(days_from_today: int = 0) -> str:
    return (dt.datetime.now(LOCAL_ZONE) + dt.timedelta(days=days_from_today)).date().isoformat()


def day_text(date: str) -> str:
    """The date as the Vietnamese page writes it."""
    return dt.date.fromisoformat(date).strftime("%d/%m/%Y")


async def ready_to_plan(stack: LiveStack) -> None:
    """A depot, the truck's capacity, shift and driver, and the points to plan."""
    async with stack.pool.connection() as conn:
        tenant = await fleet.get_tenant(conn, stack.tenant)
        depot = await fleet.ensure_geofence(
            conn, tenant.id, "Bãi xe Quang Trung", fleet.GeofenceKind.DEPOT, DEPOT_RING
        )
        driver = await fleet.create_staff(conn, tenant.id, "lx-01", DRIVER, fleet.StaffRole.DRIVER)
        await conn.execute(
            "UPDATE vehicles SET capacity_kg = %s WHERE id = %s", (CAPACITY_KG, stack.vehicle_id)
        )
        await fleet.set_truck_shift(
            conn, tenant.id, stack.vehicle_id, depot_geofence_id=depot, driver_staff_id=driver
        )
        await customers.ensure_service_points(
            conn,
            tenant.id,
            [
                customers.NewServicePoint(
                    code=code,
                    name=name,
                    kind=customers.CustomerKind.HOUSEHOLD,
                    lat=lat,
                    lon=lon,
                )
                for code, name, lat, lon in [*MORE_POINTS, MARKET]
            ],
        )
        await conn.execute(
            "UPDATE service_points SET waste_kg_per_day = %s WHERE tenant_id = %s",
            (WASTE_KG, tenant.id),
        )
        await conn.execute(
            "UPDATE service_points SET waste_kg_per_day = 90000 WHERE tenant_id = %s AND code = %s",
            (tenant.id, MARKET[0]),
        )
        await conn.commit()


async def accountant_token(stack: LiveStack) -> str:
    async with stack.pool.connection() as conn:
        tenant = await fleet.get_tenant(conn, stack.tenant)
        user = await accounts.create_user(
            conn,
            tenant.id,
            accounts.NewUser("ketoan", "Kế toán Thu", Role.ACCOUNTANT, "mật khẩu kế toán"),
        )
        issued = await accounts.issue_token(conn, user, dt.datetime.now(dt.UTC), 3600)
        await conn.commit()
    return issued.token


async def plan_by_api(stack: LiveStack, date: str) -> dict[str, object]:
    async with api_client(stack) as api:
        response = await api.post("/api/v1/plans", json={"date": date, "time_limit_s": 1})
    assert response.status_code == 201, response.text
    plan: dict[str, object] = response.json()
    return plan


async def choose_date(page: Page, date: str) -> None:
    from playwright.async_api import expect

    await page.get_by_test_id("route-date").fill(date)
    await expect(page.locator("#routes-title")).to_have_text(f"Tuyến ngày {day_text(date)}")


# ---------------------------------------------------------------- tests


async def test_a_dispatcher_plans_tomorrow_and_reads_the_plan(dispatcher: Dispatcher) -> None:
    from playwright.async_api import expect

    stack, page = dispatcher.stack, dispatcher.page
    await ready_to_plan(stack)
    await dispatcher.open()
    tomorrow = local_day(1)
    await choose_date(page, tomorrow)
    await page.get_by_test_id("plan-toggle").click()
    panel = page.get_by_test_id("plan-panel")
    summary = panel.get_by_test_id("plan-summary")
    await expect(summary).to_contain_text("Chưa có kế hoạch")
    await expect(panel.get_by_test_id("plan-replan")).to_be_hidden()  # re-plans are today's

    limits = panel.get_by_test_id("plan-time-limit")
    offered = await limits.locator("option").evaluate_all("options => options.map(o => +o.value)")
    await limits.select_option(str(min(offered)))
    await panel.get_by_test_id("plan-run").click()
    busy = panel.get_by_test_id("plan-busy")
    await expect(busy).to_contain_text("Đang lập tuyến")
    await expect(panel.get_by_test_id("plan-run")).to_be_disabled()
    await expect(busy).to_be_hidden(timeout=60_000)

    async with api_client(stack) as api:
        (plan,) = (await api.get(f"/api/v1/plans?date={tomorrow}")).json()
    figures = plan["summary"]
    assert plan["time_limit_s"] == min(offered)
    assert figures["served"] == 3 + len(MORE_POINTS)
    assert figures["stops"] == 3 + len(MORE_POINTS) + 1
    await expect(summary.get_by_test_id("plan-header")).to_contain_text(
        f"#{plan['id']} · Lập tuyến"
    )
    await expect(summary.locator("[data-figure=served]")).to_have_text(
        f"{figures['served']} / {figures['stops']}"
    )
    await expect(summary.locator("[data-figure=vehicles]")).to_have_text("1 / 1")
    await expect(summary.locator("[data-figure=matrix]")).to_have_text("bản đồ đường phố")
    row = summary.get_by_test_id("plan-route-row")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text(VEHICLE_CODE)
    # The market is left out, with its reason in words.
    left_out = summary.get_by_test_id("unserved-stop")
    await expect(left_out).to_have_count(1)
    await expect(left_out).to_contain_text(MARKET[0])
    await expect(left_out).to_contain_text("Lượng rác vượt tải trọng xe")
    assert await left_out.get_attribute("data-reason") == "demand_above_capacity"

    # The new run is in the route list of the date, and drawn on the map with the plan.
    (run_id,) = plan["route_run_ids"]
    route_list = page.get_by_test_id("route-select")
    await expect(route_list.locator(f"option[value='{run_id}']")).to_contain_text(f"#{plan['id']}")
    await expect(page.locator("path.plan-route-line")).to_have_count(1)
    listed = panel.get_by_test_id("plan-list").locator("option")
    await expect(listed).to_have_count(1)
    await expect(listed).to_contain_text(f"#{plan['id']} · ")
    await expect(listed).to_contain_text(f"Lập tuyến · {stack.username}")

    # A route's row shows the run in the route panel.
    await row.click()
    await expect(route_list).to_have_value(str(run_id))
    await expect(page.get_by_test_id("stop-marker")).not_to_have_count(0)

    await panel.get_by_test_id("plan-tab-tasks").click()
    person = panel.get_by_test_id("task-person")
    await expect(person).to_have_count(1)
    await expect(person).to_contain_text(DRIVER)
    await expect(person).to_contain_text("Lái xe")
    await expect(person).to_contain_text(VEHICLE_CODE)
    assert dispatcher.problems == []


async def test_an_accountant_reads_the_plans_but_cannot_plan(dispatcher: Dispatcher) -> None:
    from playwright.async_api import expect

    stack, page = dispatcher.stack, dispatcher.page
    await ready_to_plan(stack)
    tomorrow = local_day(1)
    plan = await plan_by_api(stack, tomorrow)
    token = await accountant_token(stack)
    await page.goto(f"{stack.base_url}/#token={token}")
    await dispatcher.until_live()
    await page.get_by_test_id("plan-toggle").click()
    panel = page.get_by_test_id("plan-panel")
    await expect(panel).to_be_visible()
    await expect(panel.get_by_test_id("plan-run")).to_be_hidden()
    await expect(panel.get_by_test_id("plan-replan")).to_be_hidden()  # today, yet no re-plan

    await choose_date(page, tomorrow)
    await expect(panel.get_by_test_id("plan-header")).to_contain_text(f"#{plan['id']}")
    await expect(panel.get_by_test_id("unserved-stop")).to_contain_text(MARKET[0])
    await expect(panel.get_by_test_id("plan-run")).to_be_hidden()
    await panel.get_by_test_id("plan-tab-tasks").click()
    await expect(panel.get_by_test_id("task-person")).to_contain_text(DRIVER)
    assert dispatcher.problems == []


async def test_a_blocked_road_is_picked_on_the_map_and_today_is_planned_again(
    dispatcher: Dispatcher,
) -> None:
    from playwright.async_api import expect

    stack, page = dispatcher.stack, dispatcher.page
    await ready_to_plan(stack)
    today = local_day()
    first = await plan_by_api(stack, today)
    await dispatcher.open()
    await page.get_by_test_id("plan-toggle").click()
    panel = page.get_by_test_id("plan-panel")
    await expect(panel.get_by_test_id("plan-header")).to_contain_text(f"#{first['id']}")

    # Esc leaves the map's click mode before a place is picked.
    hint = page.get_by_test_id("map-hint")
    await panel.get_by_test_id("replan-road_blocked").click()
    await expect(hint).to_contain_text("Bấm vào bản đồ chỗ đường bị chặn")
    await page.keyboard.press("Escape")
    await expect(hint).to_be_hidden()
    await expect(panel.get_by_test_id("replan-form")).to_be_hidden()

    await panel.get_by_test_id("replan-road_blocked").click()
    await expect(hint).to_be_visible()
    at = await dispatcher.helper("mapPoint(20.9700, 105.7775)")  # on Đường Quang Trung
    await page.get_by_test_id("map").click(position={"x": at[0], "y": at[1]})
    await expect(hint).to_be_hidden()
    await expect(panel.get_by_test_id("block-where")).to_contain_text("20.9700")
    await expect(page.locator("path.road-block")).to_have_count(1)
    assert await panel.get_by_test_id("block-radius").input_value() == "30"
    await panel.get_by_test_id("block-note").fill("Sửa cống")
    await panel.get_by_test_id("replan-send").click()
    await expect(panel.get_by_test_id("plan-header")).to_contain_text(
        "Đường bị chặn", timeout=60_000
    )
    await expect(panel.get_by_test_id("replan-form")).to_be_hidden()

    async with api_client(stack) as api:
        plans = (await api.get(f"/api/v1/plans?date={today}")).json()
    assert [p["reason"] for p in plans] == ["plan", "road_blocked"]
    assert plans[1]["replans_id"] == first["id"]
    assert plans[1]["note"] == "Sửa cống"
    await expect(panel.get_by_test_id("plan-header")).to_contain_text(f"#{plans[1]['id']}")
    await expect(panel.get_by_test_id("plan-list").locator("option")).to_have_count(2)
    assert dispatcher.problems == []


async def test_a_truck_out_of_service_is_put_back_from_the_panel(dispatcher: Dispatcher) -> None:
    """A breakdown takes a truck out of plans; the panel lists it and puts it back."""
    from playwright.async_api import expect

    stack, page = dispatcher.stack, dispatcher.page
    await ready_to_plan(stack)
    async with api_client(stack) as api:
        response = await api.put(
            f"/api/v1/vehicles/{stack.vehicle_id}/in-service", json={"in_service": False}
        )
        assert response.status_code == 200, response.text
        assert response.json()["in_service"] is False
    await dispatcher.open()
    await page.get_by_test_id("plan-toggle").click()
    panel = page.get_by_test_id("plan-panel")
    box = panel.get_by_test_id("plan-out-of-service")
    await expect(box).to_be_visible()
    await expect(box.get_by_test_id("out-of-service-vehicle")).to_have_text(
        [f"{VEHICLE_CODE}Đưa xe trở lại"]
    )
    await box.get_by_test_id("put-back").click()
    await expect(page.locator("#toasts")).to_contain_text(f"Xe {VEHICLE_CODE} đã trở lại")
    await expect(box).to_be_hidden()
    async with api_client(stack) as api:
        vehicle = (await api.get(f"/api/v1/vehicles/{stack.vehicle_id}")).json()
    assert vehicle["in_service"] is True
    # Planned again, the truck is used.
    plan = await plan_by_api(stack, local_day(1))
    assert plan["summary"]["vehicles_used"] == 1  # type: ignore[index]
    assert dispatcher.problems == []
