"""The HTTP API against real PostgreSQL: tenant isolation for every endpoint family, role
checks, validation errors that name the field, and each endpoint's answer."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

import accounts
import fleet
import storage
from accounts import Role
from tests.api.conftest import NOW, ApiUnderTest

READERS = {Role.ADMIN, Role.DISPATCHER, Role.ACCOUNTANT}


def read_paths(world: Any) -> list[str]:
    """One GET per endpoint family, naming ``world``'s objects."""
    day = "2026-12-04"
    span = "from=2026-12-04T02:00:00Z&to=2026-12-04T03:00:00Z"
    return [
        f"/api/v1/vehicles/{world.vehicle_id}",
        f"/api/v1/devices/{world.device_id}",
        f"/api/v1/alerts/{world.alert_id}",
        f"/api/v1/route-runs/{world.run_id}",
        f"/api/v1/route-runs/{world.run_id}/compliance",
        f"/api/v1/vehicles/{world.vehicle_id}/track?{span}",
        f"/api/v1/vehicles/{world.vehicle_id}/day-report?date={day}",
    ]


LIST_PATHS = [
    "/api/v1/vehicles",
    "/api/v1/staff",
    "/api/v1/devices",
    "/api/v1/geofences",
    "/api/v1/alerts",
    "/api/v1/route-runs?date=2026-12-04",
    "/api/v1/positions/latest",
    "/api/v1/map/config",
    "/api/v1/map/streets",
]


async def test_every_endpoint_family_answers_another_tenants_object_with_404(
    api: ApiUnderTest,
) -> None:
    for path in read_paths(api.b):
        response = await api.get(path)
        assert response.status_code == 404, (path, response.text)
        assert "tenant-b" not in response.text
        body = response.json()
        assert set(body["error"]) >= {"field", "reason"}
    visits = await api.get(f"/api/v1/stop-visits?route_run_id={api.b.run_id}")
    assert visits.json() == []
    for path in read_paths(api.a):
        response = await api.get(path)
        assert response.status_code == 200, (path, response.text)


async def test_latest_positions_are_those_of_the_last_two_days_by_the_callers_clock(
    api: ApiUnderTest,
) -> None:
    """The window is the caller's clock's, not the database server's (a fixed test day
    stays valid on any day it runs)."""
    latest = (await api.get("/api/v1/positions/latest")).json()
    assert [p["device_id"] for p in latest] == [api.a.device_id]
    last_fix = dt.datetime.fromisoformat(latest[0]["time"])
    async with api.ctx.pool.connection() as conn:
        just_within = await storage.latest_positions_by_device(
            conn, last_fix + storage.LATEST_WITHIN - dt.timedelta(seconds=1)
        )
        past = await storage.latest_positions_by_device(conn, last_fix + storage.LATEST_WITHIN)
    assert api.a.device_id in {row[0] for row in just_within}
    assert api.a.device_id not in {row[0] for row in past}


async def test_lists_hold_only_the_callers_tenant(api: ApiUnderTest) -> None:
    vehicles = (await api.get("/api/v1/vehicles")).json()
    assert [v["id"] for v in vehicles] == [api.a.vehicle_id]
    devices = (await api.get("/api/v1/devices")).json()
    assert [d["id"] for d in devices] == [api.a.device_id]
    assert "secret" not in devices[0]
    found = (await api.get("/api/v1/alerts")).json()
    assert [a["id"] for a in found] == [api.a.alert_id]
    runs = (await api.get("/api/v1/route-runs?date=2026-12-04")).json()
    assert [r["id"] for r in runs] == [api.a.run_id]
    latest = (await api.get("/api/v1/positions/latest")).json()
    assert [p["device_id"] for p in latest] == [api.a.device_id]
    staff_ids = {s["id"] for s in (await api.get("/api/v1/staff")).json()}
    assert api.a.driver_id in staff_ids
    assert api.b.driver_id not in staff_ids
    users = (await api.get("/api/v1/users", Role.ADMIN)).json()
    assert {u["id"] for u in users} == {u.id for u in api.a.users.values()}


@pytest.mark.parametrize("role", list(Role))
async def test_roles_that_may_not_read_operations_get_403(api: ApiUnderTest, role: Role) -> None:
    for path in [*LIST_PATHS, *read_paths(api.a)]:
        response = await api.get(path, role)
        expected = 200 if role in READERS else 403
        assert response.status_code == expected, (role, path, response.text)


async def test_only_admins_manage_devices_and_users_and_only_operators_act_on_alerts(
    api: ApiUnderTest,
) -> None:
    for role in (Role.DISPATCHER, Role.ACCOUNTANT, Role.CASHIER):
        response = await api.post(
            "/api/v1/devices", role, json={"slug": "new-truck", "kind": "truck"}
        )
        assert response.status_code == 403
        response = await api.post(
            "/api/v1/users",
            role,
            json={"username": "x", "full_name": "X", "role": "admin", "password": "p" * 12},
        )
        assert response.status_code == 403
    response = await api.post(
        f"/api/v1/alerts/{api.a.alert_id}/acknowledge", Role.ACCOUNTANT, json={}
    )
    assert response.status_code == 403


async def test_without_a_valid_token_every_endpoint_answers_401(api: ApiUnderTest) -> None:
    for path in [*LIST_PATHS, *read_paths(api.a), "/api/v1/me"]:
        for headers in ({}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Basic x"}):
            response = await api.client.get(path, headers=headers)
            assert response.status_code == 401, (path, headers)
            assert response.json()["error"]["field"] == "authorization"


# ---------------------------------------------------------------- logins and tokens


async def login(api: ApiUnderTest, password: str, username: str = "dispatcher") -> Any:
    return await api.client.post(
        "/api/v1/auth/login",
        json={"tenant": "tenant-a", "username": username, "password": password},
    )


async def test_login_gives_a_token_that_works_until_logout(api: ApiUnderTest) -> None:
    from tests.api.conftest import PASSWORD

    response = await login(api, PASSWORD)
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["role"] == "dispatcher"
    assert body["user"]["tenant"] == "tenant-a"
    headers = {"Authorization": f"Bearer {body['token']}"}
    me = await api.client.get("/api/v1/me", headers=headers)
    assert me.json()["username"] == "dispatcher"
    assert (await api.client.post("/api/v1/auth/logout", headers=headers)).status_code == 204
    assert (await api.client.get("/api/v1/me", headers=headers)).status_code == 401


async def test_wrong_passwords_lock_the_account_then_the_lock_expires(api: ApiUnderTest) -> None:
    from tests.api.conftest import PASSWORD

    for _ in range(api.ctx.settings.max_failed_logins):
        response = await login(api, "wrong password!")
        assert response.status_code == 401
        assert "wrong tenant, username or password" in response.json()["error"]["reason"]
    locked = await login(api, PASSWORD)
    assert locked.status_code == 423
    assert locked.json()["error"]["locked_until"]
    api.clock.advance(api.ctx.settings.lockout_s + 1)
    assert (await login(api, PASSWORD)).status_code == 200


async def test_an_unknown_user_and_a_wrong_password_get_the_same_answer(api: ApiUnderTest) -> None:
    unknown = await login(api, "whatever1234", username="nobody")
    wrong = await login(api, "whatever1234")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()


async def test_one_address_trying_many_logins_is_slowed_down(api: ApiUnderTest) -> None:
    answers = [
        (await login(api, "wrong password!", username=f"user{n}")).status_code for n in range(12)
    ]
    assert answers[: api.ctx.settings.login_burst] == [401] * api.ctx.settings.login_burst
    assert answers[-1] == 429
    response = await login(api, "wrong password!")
    assert int(response.headers["Retry-After"]) >= 1


async def test_tokens_expire_and_are_revoked_by_a_password_change_or_disabling(
    api: ApiUnderTest,
) -> None:
    dispatcher = api.a.users[Role.DISPATCHER]
    assert (await api.get("/api/v1/me")).status_code == 200
    api.clock.advance(3601)  # the world's tokens last an hour
    assert (await api.get("/api/v1/me")).status_code == 401

    async with api.ctx.pool.connection() as conn:
        fresh = await accounts.issue_token(conn, dispatcher, api.clock.now(), 3600)
    headers = {"Authorization": f"Bearer {fresh.token}"}
    assert (await api.client.get("/api/v1/me", headers=headers)).status_code == 200
    admin = {"Authorization": f"Bearer {await _token(api, Role.ADMIN)}"}
    disabled = await api.client.post(f"/api/v1/users/{dispatcher.id}/disable", headers=admin)
    assert disabled.json()["active"] is False
    assert (await api.client.get("/api/v1/me", headers=headers)).status_code == 401


async def _token(api: ApiUnderTest, role: Role) -> str:
    async with api.ctx.pool.connection() as conn:
        issued = await accounts.issue_token(conn, api.a.users[role], api.clock.now(), 3600)
    return issued.token


async def test_users_are_created_by_admins_with_validated_fields(api: ApiUnderTest) -> None:
    new = {"username": "ketoan2", "full_name": "Lê Thị Kế Toán", "role": "accountant"}
    short = await api.post("/api/v1/users", Role.ADMIN, json={**new, "password": "short"})
    assert short.status_code == 422
    assert short.json()["error"]["field"] == "password"
    bad_name = await api.post(
        "/api/v1/users", Role.ADMIN, json={**new, "username": "Kế Toán", "password": "p" * 12}
    )
    assert bad_name.json()["error"]["field"] == "username"
    created = await api.post("/api/v1/users", Role.ADMIN, json={**new, "password": "p" * 12})
    assert created.status_code == 201
    assert created.json()["staff_id"] is not None
    again = await api.post("/api/v1/users", Role.ADMIN, json={**new, "password": "p" * 12})
    assert again.status_code == 409
    assert again.json()["error"]["field"] == "username"
    other = await api.post(
        "/api/v1/users",
        Role.ADMIN,
        json={**new, "username": "x2", "password": "p" * 12, "staff_id": api.b.driver_id},
    )
    assert other.status_code == 404


# ---------------------------------------------------------------- devices


async def test_a_device_secret_is_shown_once_and_rotation_tells_the_broker(
    api: ApiUnderTest,
) -> None:
    created = await api.post(
        "/api/v1/devices",
        Role.ADMIN,
        json={"slug": "truck-new", "kind": "truck", "vehicle_id": api.a.vehicle_id},
    )
    assert created.status_code == 201
    body = created.json()
    username = fleet.device_username("tenant-a", "truck-new")
    assert body["mqtt_username"] == username
    first_secret = body["secret"]
    device_id = body["device"]["id"]
    assert "secret" not in (await api.get(f"/api/v1/devices/{device_id}")).json()

    rotated = await api.post(f"/api/v1/devices/{device_id}/rotate-secret", Role.ADMIN)
    assert rotated.json()["secret"] != first_secret
    async with api.ctx.pool.connection() as conn:
        login = await fleet.find_login(conn, username)
    assert login is not None
    assert fleet.verify_secret(rotated.json()["secret"], login.credential_hash)
    assert not fleet.verify_secret(first_secret, login.credential_hash)
    revoked = await api.post(f"/api/v1/devices/{device_id}/revoke", Role.ADMIN)
    assert revoked.json()["active"] is False
    assert api.broker_told == [username, username]


async def test_a_device_cannot_link_to_another_tenants_vehicle(api: ApiUnderTest) -> None:
    response = await api.post(
        "/api/v1/devices",
        Role.ADMIN,
        json={"slug": "sneaky", "kind": "truck", "vehicle_id": api.b.vehicle_id},
    )
    assert response.status_code == 404
    rotate = await api.post(f"/api/v1/devices/{api.b.device_id}/rotate-secret", Role.ADMIN)
    assert rotate.status_code == 404
    assert api.broker_told == []


# ---------------------------------------------------------------- alerts


async def test_alerts_are_acknowledged_assigned_and_resolved_as_the_calling_person(
    api: ApiUnderTest,
) -> None:
    alert_path = f"/api/v1/alerts/{api.a.alert_id}"
    dispatcher = api.a.users[Role.DISPATCHER]
    acked = await api.post(f"{alert_path}/acknowledge", json={"note": "đã gọi lái xe"})
    assert acked.status_code == 200
    assert acked.json()["state"] == "acknowledged"
    assert acked.json()["acknowledged_by"] == dispatcher.staff_id
    assert acked.json()["acknowledge_note"] == "đã gọi lái xe"
    assigned = await api.post(f"{alert_path}/assign", json={"staff_id": api.a.driver_id})
    assert assigned.json()["assigned_to"] == api.a.driver_id
    elsewhere = await api.post(f"{alert_path}/assign", json={"staff_id": api.b.driver_id})
    assert elsewhere.status_code == 404
    resolved = await api.post(f"{alert_path}/resolve", json={"note": "xe đã về tuyến"})
    assert resolved.json()["state"] == "resolved"
    assert resolved.json()["resolution"] == "by_person"
    again = await api.post(f"{alert_path}/acknowledge", json={})
    assert again.status_code == 409
    open_ones = await api.get("/api/v1/alerts?state=open&state=acknowledged")
    assert open_ones.json() == []
    other = await api.post(f"/api/v1/alerts/{api.b.alert_id}/acknowledge", json={})
    assert other.status_code == 404


async def test_alert_filters_and_a_bad_filter_name_the_field(api: ApiUnderTest) -> None:
    wrong_route = await api.get("/api/v1/alerts?kind=wrong_route&state=open")
    assert [a["id"] for a in wrong_route.json()] == [api.a.alert_id]
    assert (await api.get("/api/v1/alerts?kind=speeding")).json() == []
    bad = await api.get("/api/v1/alerts?kind=flying")
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "kind[0]"
    naive = await api.get("/api/v1/alerts?since=2026-12-04T01:00:00")
    assert naive.status_code == 422
    assert naive.json()["error"]["field"] == "since"
    too_many = await api.get("/api/v1/alerts?limit=100000")
    assert too_many.json()["error"]["field"] == "limit"
    note = await api.post(f"/api/v1/alerts/{api.a.alert_id}/acknowledge", json={"note": "x" * 2001})
    assert note.json()["error"]["field"] == "note"


# ---------------------------------------------------------------- positions and reports


async def test_a_track_is_downsampled_by_the_database(api: ApiUnderTest) -> None:
    start = NOW - dt.timedelta(minutes=10)
    span = f"from={start.isoformat()}&to={NOW.isoformat()}".replace("+00:00", "Z")
    raw = (await api.get(f"/api/v1/vehicles/{api.a.vehicle_id}/track?{span}&bucket_s=0")).json()
    assert len(raw["points"]) == 120
    minute = (await api.get(f"/api/v1/vehicles/{api.a.vehicle_id}/track?{span}&bucket_s=60")).json()
    assert len(minute["points"]) == 10
    # The last fix of each minute: 11 fixes further east than the minute's first.
    assert minute["points"][0]["lon"] == pytest.approx(105.7700 + 0.0011)
    backwards = await api.get(
        f"/api/v1/vehicles/{api.a.vehicle_id}/track?from={NOW.isoformat()}&to={start.isoformat()}".replace(
            "+00:00", "Z"
        )
    )
    assert backwards.status_code == 422
    assert backwards.json()["error"]["field"] == "to"


async def test_day_report_and_route_views_come_from_the_stored_day(api: ApiUnderTest) -> None:
    report = await api.get(f"/api/v1/vehicles/{api.a.vehicle_id}/day-report?date=2026-12-04")
    summary = report.json()["summary"]
    assert summary["fix_count"] == 120
    # 119 steps of 0.0001° of longitude at 20.97° N: 10.39 m each.
    assert summary["distance_m"] == pytest.approx(119 * 10.39, rel=0.01)
    run = (await api.get(f"/api/v1/route-runs/{api.a.run_id}")).json()
    assert run["expected_path"]["type"] == "LineString"
    assert [s["status"] for s in run["stops"]] == ["pending", "pending"]
    compliance = (await api.get(f"/api/v1/route-runs/{api.a.run_id}/compliance")).json()
    assert compliance["stops_total"] == 2
    assert compliance["counts"]["pending"] == 2
    assert compliance["alerts_by_kind"] == {"wrong_route": 1}
    # The drive goes on 200 m past the path's end: fixes 0..103 are within its 40 m.
    assert compliance["corridor_share"] == pytest.approx(103 / 119, abs=0.01)


async def test_the_map_config_bounds_the_tenants_streets(api: ApiUnderTest) -> None:
    import planning

    async with api.ctx.pool.connection() as conn:
        await planning.save_street_map(
            conn,
            api.a.tenant_id,
            [
                planning.MapStreet(
                    "Phố Văn Quán",
                    planning.StreetKind.SECONDARY,
                    False,
                    ((105.77, 20.96), (105.79, 20.98)),
                )
            ],
            planning.StreetSource.IMPORT,
        )
    config = (await api.get("/api/v1/map/config")).json()
    assert config["bounds"] == [[20.96, 105.77], [20.98, 105.79]]
    assert config["tile_url"] is None
    streets = (await api.get("/api/v1/map/streets")).json()
    assert [f["properties"]["name"] for f in streets["features"]] == ["Phố Văn Quán"]
    other = await api.client.get("/api/v1/map/streets", headers=api.b.auth())
    assert other.json()["features"] == []


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/vehicles/{vehicle}/day-report?date=0001-01-01", "date"),
        (
            "/api/v1/vehicles/{vehicle}/track?from=0001-01-01T00:00:00Z&to=2026-12-04T00:00:00Z",
            "from",
        ),
        ("/api/v1/alerts?until=9999-12-31T23:59:59-12:00", "until"),
        ("/api/v1/route-runs?date=2026-02-30", "date"),
        ("/api/v1/vehicles/9223372036854775808", "vehicle_id"),
        ("/api/v1/vehicles/0", "vehicle_id"),
    ],
)
async def test_dates_and_ids_out_of_range_are_refused_by_name(
    api: ApiUnderTest, path: str, field: str
) -> None:
    response = await api.get(path.format(vehicle=api.a.vehicle_id))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


async def test_text_with_a_nul_character_is_refused_with_a_reason(api: ApiUnderTest) -> None:
    response = await api.post("/api/v1/vehicles", Role.ADMIN, json={"code": "29C\u0000"})
    assert response.status_code == 422
    assert "NUL" in response.json()["error"]["reason"]
    assert (await api.get("/api/v1/vehicles")).json()[0]["code"] == "29C-tenant-a"
