"""Fixtures of the API tests: two tenants with everything the API shows, a client per role,
and the whole running system for the browser tests."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

import accounts
import alerts
import customers
import fleet
import planning
from accounts import Role
from api import SessionTokens, StaticTokens
from api.context import ApiContext
from api.server import http_app
from sanitrack.clock import ManualClock
from sanitrack.settings import ApiSettings
from storage import Pool, PositionsBackend, write_positions
from tests.support import truncate

NOW = dt.datetime(2026, 12, 4, 3, 0, tzinfo=dt.UTC)  # 10:00 in Hà Đông
PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id at its smallest cost: the tests create many users; the production
    parameters are tested once, in test_accounts."""
    monkeypatch.setattr(
        accounts.service, "_hasher", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    )


@dataclass
class TenantWorld:
    """One tenant's objects, and a token per role."""

    tenant_id: int
    slug: str
    vehicle_id: int
    device_id: int
    driver_id: int
    service_point_id: int
    run_id: int
    alert_id: int
    users: dict[Role, accounts.User] = field(default_factory=dict)
    tokens: dict[Role, str] = field(default_factory=dict)

    def auth(self, role: Role = Role.DISPATCHER) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


async def build_tenant(pool: Pool, slug: str, now: dt.datetime = NOW) -> TenantWorld:
    async with pool.connection() as conn:
        tenant = await fleet.ensure_tenant(conn, slug, f"Công ty {slug}")
        vehicle_id = await fleet.create_vehicle(conn, tenant.id, f"29C-{slug}", "Xe ép rác 1")
        driver_id = await fleet.create_staff(
            conn, tenant.id, f"lx-{slug}", "Nguyễn Văn Lái", fleet.StaffRole.DRIVER
        )
        device = await fleet.create_device(
            conn, tenant, f"truck-{slug}", fleet.DeviceKind.TRUCK, vehicle_id=vehicle_id
        )
        points = await customers.ensure_service_points(
            conn,
            tenant.id,
            [
                customers.NewServicePoint(
                    code=f"KH-{slug}",
                    name="Trần Thị Bình",
                    kind=customers.CustomerKind.HOUSEHOLD,
                    lat=20.9700,
                    lon=105.7700,
                )
            ],
        )
        point_id = points[f"KH-{slug}"]
        start = now - dt.timedelta(hours=2)
        run_id = await planning.create_route_run(
            conn,
            tenant.id,
            planning.NewRouteRun(
                vehicle_id=vehicle_id,
                local_date=dt.date(2026, 12, 4),
                name="Tuyến Văn Quán",
                planned_start=start,
                planned_end=now + dt.timedelta(hours=2),
                corridor_m=40,
                expected_path=((105.7700, 20.9700), (105.7800, 20.9700)),
                path_length_m=1040.0,
                source=planning.RunSource.MANUAL,
                stops=tuple(
                    planning.RouteStop(
                        seq=n + 1,
                        kind=planning.StopKind.COLLECT,
                        service_point_id=point_id,
                        lat=20.9700,
                        lon=105.7700 + 0.01 * n,
                        path_offset_m=1040 * n,
                        planned_arrival=start + dt.timedelta(minutes=10 + 30 * n),
                        dwell_radius_m=30,
                    )
                    for n in range(2)
                ),
            ),
        )
        events = await alerts.apply_signals(
            conn,
            [
                alerts.AlertSignal(
                    change=alerts.Change.OPENED,
                    key=f"wrong_route:{slug}",
                    kind=alerts.AlertKind.WRONG_ROUTE,
                    severity=alerts.Severity.WARNING,
                    tenant_id=tenant.id,
                    device_id=device.device.id,
                    vehicle_id=vehicle_id,
                    route_run_id=run_id,
                    stop_seq=None,
                    at=now - dt.timedelta(minutes=5),
                    message="Xe đi sai tuyến",
                )
            ],
        )
        # A straight drive east along the path, one fix every 5 s for 10 minutes.
        await write_positions(
            conn,
            [
                (
                    device.device.id,
                    now - dt.timedelta(minutes=10) + dt.timedelta(seconds=5 * n),
                    tenant.id,
                    now,
                    20.9700,
                    105.7700 + 0.0001 * n,
                    7.5,
                    90.0,
                    5.0,
                    None,
                    None,
                    None,
                    True,
                    None,
                    None,
                    "native",
                )
                for n in range(120)
            ],
        )
        await conn.commit()
        world = TenantWorld(
            tenant.id,
            slug,
            vehicle_id,
            device.device.id,
            driver_id,
            point_id,
            run_id,
            events[0].alert.id,
        )
        for role in Role:
            customer_id = None
            if role is Role.CUSTOMER:
                cursor = await conn.execute(
                    "SELECT customer_id FROM service_points WHERE id = %s", (point_id,)
                )
                row = await cursor.fetchone()
                assert row is not None
                customer_id = row[0]
            user = await accounts.create_user(
                conn,
                tenant.id,
                accounts.NewUser(
                    f"{role.value}", f"Người {role.value}", role, PASSWORD, customer_id=customer_id
                ),
            )
            world.users[role] = user
            issued = await accounts.issue_token(conn, user, now, 3600)
            world.tokens[role] = issued.token
        await conn.commit()
    return world


@dataclass
class ApiUnderTest:
    client: httpx.AsyncClient
    ctx: ApiContext
    clock: ManualClock
    a: TenantWorld
    b: TenantWorld
    broker_told: list[str]

    async def get(self, path: str, role: Role = Role.DISPATCHER, **kw: Any) -> httpx.Response:
        return await self.client.get(path, headers=self.a.auth(role), **kw)

    async def post(self, path: str, role: Role = Role.DISPATCHER, **kw: Any) -> httpx.Response:
        return await self.client.post(path, headers=self.a.auth(role), **kw)

    async def put(self, path: str, role: Role = Role.DISPATCHER, **kw: Any) -> httpx.Response:
        return await self.client.put(path, headers=self.a.auth(role), **kw)


@contextlib.asynccontextmanager
async def api_under_test(
    pool: Pool, settings: ApiSettings | None = None
) -> AsyncIterator[ApiUnderTest]:
    async with pool.connection() as conn:
        await truncate(conn, "users", "api_tokens", "street_map")
    a = await build_tenant(pool, "tenant-a")
    b = await build_tenant(pool, "tenant-b")
    clock = ManualClock(NOW)
    told: list[str] = []

    async def credentials_changed(username: str) -> None:
        told.append(username)

    ctx = ApiContext(
        pool,
        clock,
        settings or ApiSettings(),
        PositionsBackend.NATIVE,
        credentials_changed=credentials_changed,
    )
    app = http_app(ctx, accounts_authenticator(pool, clock), _healthy, [])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        yield ApiUnderTest(client, ctx, clock, a, b, told)


def accounts_authenticator(pool: Pool, clock: ManualClock) -> SessionTokens:
    return SessionTokens(pool, clock, fallback=StaticTokens({}))


async def _healthy() -> dict[str, Any]:
    return {"ok": True}


@pytest.fixture
async def api(pool: Pool) -> AsyncIterator[ApiUnderTest]:
    async with api_under_test(pool) as under_test:
        yield under_test


# ---------------------------------------------------------------- the whole running system


@dataclass
class LiveStack:
    """Embedded broker, ingest, rules engine, live feed and API on free ports, against the
    test database: what ``sanitrack demo`` runs, with one truck on one route."""

    base_url: str
    token: str
    tenant: str
    username: str
    password: str
    mqtt_host: str
    mqtt_port: int
    device_username: str
    device_secret: str
    device_slug: str
    device_id: int
    vehicle_id: int
    run_id: int
    pool: Pool
    # The route runs east along latitude 20.97 from lon 105.770 to 105.780.
    path: tuple[tuple[float, float], ...] = ((105.7700, 20.9700), (105.7800, 20.9700))

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1) + "/ws/live"

    async def publish(self, fixes: list[dict[str, Any]]) -> None:
        """Publish fixes as the truck does (one batch message, QoS 1)."""
        import aiomqtt
        import orjson

        async with aiomqtt.Client(
            self.mqtt_host,
            self.mqtt_port,
            username=self.device_username,
            password=self.device_secret,
            identifier=f"test-{self.device_slug}",
        ) as client:
            await client.publish(
                f"sanitrack/{self.tenant}/dev/{self.device_slug}/pos",
                orjson.dumps(fixes),
                qos=1,
            )


def fix(at: dt.datetime, lat: float, lon: float, speed_kmh: float = 20.0) -> dict[str, Any]:
    return {
        "ts": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "lat": lat,
        "lon": lon,
        "speed_kmh": speed_kmh,
        "heading_deg": 90.0,
        "accuracy_m": 5.0,
        "ignition": True,
    }


@contextlib.asynccontextmanager
async def running_stack(database_url: str, data_dir: Any, **api: Any) -> AsyncIterator[LiveStack]:
    import asyncio

    from broker import free_port
    from sanitrack import app as application
    from sanitrack.settings import load_settings

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    http_port = free_port()
    settings = load_settings(
        database_url=database_url,
        data_dir=data_dir,
        http_port=http_port,
        broker={"port": free_port()},
        ingest={"batch_max_delay_ms": 20, "client_id": f"ingest-{http_port}"},
        rules={"reload_interval_s": 0.5, "sweep_interval_s": 0.2},
        api={"live_positions_interval_ms": 50, **api},
    )
    async with contextlib.AsyncExitStack() as stack:
        db = await stack.enter_async_context(application.database(settings))
        async with db.pool.connection() as conn:
            await truncate(
                conn,
                *("positions", "dead_letters", "devices", "vehicles", "staff", "tenants", "users"),
                *("api_tokens", "alerts", "stop_visits", "route_runs", "street_map"),
            )
        stack_world = await _stack_world(db.pool, now)
        endpoint, broker = await stack.enter_async_context(
            application.mqtt_endpoint(settings, db.pool)
        )
        assert broker is not None
        runtime = await stack.enter_async_context(
            application.alerts_runtime(settings, db, endpoint, {})
        )
        service, app = await application.ingest_with_rules(
            settings, db, endpoint, runtime, broker.credentials_changed
        )
        tasks = [
            asyncio.create_task(service.run(), name="ingest"),
            asyncio.create_task(application.serve_http(app, "127.0.0.1", http_port), name="http"),
            *(asyncio.create_task(t, name=f"alerts-{n}") for n, t in enumerate(runtime.tasks)),
        ]
        try:
            await asyncio.wait_for(service.subscribed.wait(), 15)
            yield LiveStack(
                base_url=f"http://127.0.0.1:{http_port}",
                tenant="hadong-test",
                mqtt_host=endpoint.host,
                mqtt_port=endpoint.port,
                pool=db.pool,
                **stack_world,
            )
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def _stack_world(pool: Pool, now: dt.datetime) -> dict[str, Any]:
    async with pool.connection() as conn:
        tenant = await fleet.ensure_tenant(conn, "hadong-test", "URENCO Hà Đông (test)")
        vehicle_id = await fleet.create_vehicle(conn, tenant.id, "29C-100.01", "Xe ép rác 1")
        device = await fleet.create_device(
            conn, tenant, "truck-1", fleet.DeviceKind.TRUCK, vehicle_id=vehicle_id
        )
        points = await customers.ensure_service_points(
            conn,
            tenant.id,
            [
                customers.NewServicePoint(
                    code=f"KH-{n}",
                    name=f"Hộ gia đình {n}",
                    kind=customers.CustomerKind.HOUSEHOLD,
                    lat=20.9700,
                    lon=105.7700 + 0.005 * n,
                )
                for n in range(3)
            ],
        )
        await planning.save_street_map(
            conn,
            tenant.id,
            [
                planning.MapStreet(
                    "Đường Quang Trung",
                    planning.StreetKind.ARTERIAL,
                    False,
                    ((105.7650, 20.9700), (105.7850, 20.9700)),
                ),
                planning.MapStreet(
                    "Phố Văn Quán",
                    planning.StreetKind.SECONDARY,
                    False,
                    ((105.7750, 20.9650), (105.7750, 20.9750)),
                ),
            ],
            planning.StreetSource.IMPORT,
        )
        start = now - dt.timedelta(hours=1)
        run_id = await planning.create_route_run(
            conn,
            tenant.id,
            planning.NewRouteRun(
                vehicle_id=vehicle_id,
                local_date=now.astimezone(dt.timezone(dt.timedelta(hours=7))).date(),
                name="Tuyến Quang Trung",
                planned_start=start,
                planned_end=now + dt.timedelta(hours=3),
                corridor_m=40,
                expected_path=((105.7700, 20.9700), (105.7800, 20.9700)),
                path_length_m=1039.0,
                source=planning.RunSource.MANUAL,
                stops=tuple(
                    planning.RouteStop(
                        seq=n + 1,
                        kind=planning.StopKind.COLLECT,
                        service_point_id=points[f"KH-{n}"],
                        lat=20.9700,
                        lon=105.7700 + 0.005 * n,
                        path_offset_m=519.5 * n,
                        planned_arrival=now + dt.timedelta(minutes=30 * (n + 1)),
                        dwell_radius_m=30,
                    )
                    for n in range(3)
                ),
            ),
        )
        password = "mật khẩu điều phối"
        user = await accounts.create_user(
            conn,
            tenant.id,
            accounts.NewUser("dieuphoi", "Điều phối viên", Role.DISPATCHER, password),
        )
        issued = await accounts.issue_token(conn, user, now, 3600)
        await conn.commit()
    return {
        "token": issued.token,
        "username": "dieuphoi",
        "password": password,
        "device_username": device.username,
        "device_secret": device.secret,
        "device_slug": "truck-1",
        "device_id": device.device.id,
        "vehicle_id": vehicle_id,
        "run_id": run_id,
    }


@pytest.fixture
async def live_stack(database_url: str, tmp_path: Any, pool: Pool) -> AsyncIterator[LiveStack]:
    """The whole system running, with one truck on one route; ``pool`` first, so that its
    truncation does not run under the stack's feet."""
    async with running_stack(database_url, tmp_path) as stack:
        yield stack
