"""The customer book's HTTP API against real PostgreSQL: tenants kept apart, roles, bad
input named by field, stale edits refused, search without diacritics, the audit history and
change requests decided by four eyes."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from accounts import Role
from storage import Pool
from tests.api.conftest import NOW, ApiUnderTest, TenantWorld, api_under_test

TODAY = dt.date(2026, 12, 4)  # NOW's day in Hà Đông


@pytest.fixture
async def api(pool: Pool) -> AsyncIterator[ApiUnderTest]:
    async with api_under_test(pool) as under_test:
        yield under_test


async def call(
    api: ApiUnderTest,
    method: str,
    path: str,
    role: Role = Role.ACCOUNTANT,
    world: TenantWorld | None = None,
    **kw: Any,
) -> httpx.Response:
    headers = {**(world or api.a).auth(role), **kw.pop("headers", {})}
    return await api.client.request(method, f"/api/v1{path}", headers=headers, **kw)


def new_customer(
    code: str, name: str, *, lat: float = 20.9710, lon: float = 105.7710
) -> dict[str, Any]:
    return {
        "code": code,
        "name": name,
        "kind": "household",
        "phones": ["0912 345 678"],
        "points": [
            {
                "code": code,
                "address": "Số 12 Nguyễn Trãi, Hà Đông",
                "street": "Nguyễn Trãi",
                "position": {"lat": lat, "lon": lon, "accuracy_m": 8, "source": "gps"},
                "so_khau": 4,
                "valid_from": "2026-01-01",
            }
        ],
    }


async def create(
    api: ApiUnderTest, code: str, name: str, world: TenantWorld | None = None, **kw: Any
) -> dict[str, Any]:
    response = await call(
        api, "POST", "/customers", world=world, json=new_customer(code, name, **kw)
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def error_of(response: httpx.Response) -> tuple[str | None, str]:
    error = response.json()["error"]
    return error["field"], error["reason"]


# ---------------------------------------------------------------- search and reading


async def test_search_finds_vietnamese_names_typed_without_diacritics(api: ApiUnderTest) -> None:
    created = await create(api, "KH-0001", "Nguyễn Văn A")
    await create(api, "KH-0002", "Trần Thị Bé")
    await create(api, "KH-B-01", "Nguyễn Văn Anh", world=api.b)

    for role in (Role.ADMIN, Role.DISPATCHER, Role.ACCOUNTANT, Role.CASHIER):
        response = await call(api, "GET", "/customers", role, params={"q": "nguyen van a"})
        assert response.status_code == 200, (role, response.text)
        found = response.json()
        assert [p["code"] for p in found] == ["KH-0001"], role  # not tenant b's Nguyễn Văn Anh
        assert found[0]["customer_id"] == created["id"]
        assert found[0]["name"] == "Nguyễn Văn A"
        assert "tenant_id" not in found[0]

    by_phone = await call(api, "GET", "/customers", params={"q": "0912345678", "status": "active"})
    assert {p["code"] for p in by_phone.json()} >= {"KH-0001", "KH-0002"}
    none = await call(api, "GET", "/customers", params={"q": "nguyen", "status": "terminated"})
    assert none.json() == []
    paged = await call(
        api, "GET", "/customers", params={"q": "nguyen van", "limit": 1, "offset": 1}
    )
    assert paged.status_code == 200
    assert paged.json() == []


async def test_a_customer_reads_with_its_points_terms_and_open_requests(api: ApiUnderTest) -> None:
    created = await create(api, "KH-0001", "Nguyễn Văn A")
    assert created["revision"] == 1
    [point] = created["points"]

    customer = (await call(api, "GET", f"/customers/{created['id']}", Role.CASHIER)).json()
    assert customer["name"] == "Nguyễn Văn A"
    assert [p["id"] for p in customer["points"]] == [point["id"]]
    assert customer["open_change_requests"] == []
    got = (await call(api, "GET", f"/service-points/{point['id']}", Role.DISPATCHER)).json()
    assert got["so_khau"] == 4
    assert got["customer_id"] == created["id"]
    terms = (await call(api, "GET", f"/service-points/{point['id']}/terms")).json()
    assert [(t["valid_from"], t["valid_to"], t["so_khau"]) for t in terms] == [
        ("2026-01-01", None, 4)
    ]

    more = {**new_customer("KH-0001-2", "x")["points"][0], "code": "KH-0001-2", "so_khau": 2}
    added = await call(api, "POST", f"/customers/{created['id']}/points", json=more)
    assert added.status_code == 201, added.text
    customer = (await call(api, "GET", f"/customers/{created['id']}")).json()
    assert [p["code"] for p in customer["points"]] == ["KH-0001", "KH-0001-2"]


# ---------------------------------------------------------------- tenants


async def test_another_tenants_objects_are_not_found(api: ApiUnderTest) -> None:
    theirs = await create(api, "KH-B-01", "Lê Văn Bốn", world=api.b)
    their_point = theirs["points"][0]["id"]
    submitted = await call(
        api, "POST", "/change-requests", world=api.b,
        json={"customer_id": theirs["id"], "service_point_id": their_point,
              "changes": {"so_khau": 5}, "reason": "Thêm khẩu", "effective_date": "2026-12-01"},
    )  # fmt: skip
    assert submitted.status_code == 201, submitted.text
    their_request = submitted.json()["id"]
    evidence = await call(
        api, "POST", f"/change-requests/{their_request}/evidence", world=api.b,
        params={"filename": "so-ho-khau.jpg"}, content=b"\xff\xd8photo",
        headers={"Content-Type": "image/jpeg"},
    )  # fmt: skip
    assert evidence.status_code == 201, evidence.text
    their_evidence = evidence.json()["id"]
    their_collector = api.b.users[Role.COLLECTOR].staff_id
    revised = {"revision": 1, "changes": {"name": "Của tôi"}}
    capture = {"lat": 20.97, "lon": 105.77, "accuracy_m": 5, "captured_at": NOW.isoformat()}
    calls: list[tuple[str, str, Role, Any]] = [
        ("GET", f"/customers/{theirs['id']}", Role.ACCOUNTANT, None),
        ("PATCH", f"/customers/{theirs['id']}", Role.ACCOUNTANT, revised),
        ("POST", f"/customers/{theirs['id']}/points", Role.ACCOUNTANT,
         {**new_customer("KH-X", "x")["points"][0], "code": "KH-X"}),
        ("GET", f"/customers/{theirs['id']}/history", Role.ACCOUNTANT, None),
        ("GET", f"/service-points/{their_point}", Role.ACCOUNTANT, None),
        ("PATCH", f"/service-points/{their_point}", Role.ACCOUNTANT,
         {"revision": 1, "changes": {"ward": "Khác"}}),
        ("GET", f"/service-points/{their_point}/terms", Role.ACCOUNTANT, None),
        ("POST", f"/service-points/{their_point}/position", Role.COLLECTOR, capture),
        ("GET", f"/collectors/{their_collector}/book", Role.ACCOUNTANT, None),
        ("PUT", f"/collectors/{their_collector}/book", Role.ACCOUNTANT, {"point_ids": []}),
        ("POST", "/change-requests", Role.ACCOUNTANT,
         {"customer_id": theirs["id"], "changes": {"name": "x"}, "reason": "r",
          "effective_date": "2026-12-01"}),
        ("GET", f"/change-requests/{their_request}", Role.ACCOUNTANT, None),
        ("GET", f"/change-requests/{their_request}/evidence/{their_evidence}", Role.ACCOUNTANT,
         None),
        ("POST", f"/change-requests/{their_request}/approve", Role.ADMIN, {"note": ""}),
        ("POST", f"/change-requests/{their_request}/reject", Role.ADMIN, {"note": ""}),
        ("POST", f"/change-requests/{their_request}/cancel", Role.ACCOUNTANT, {"note": ""}),
    ]  # fmt: skip
    for method, path, role, body in calls:
        response = await call(api, method, path, role, json=body)
        assert response.status_code == 404, (method, path, response.status_code, response.text)
        assert response.json()["error"]["reason"]

    upload = await call(
        api, "POST", f"/change-requests/{their_request}/evidence",
        params={"filename": "x.jpg"}, content=b"x",
        headers={"Content-Type": "image/jpeg"},
    )  # fmt: skip
    assert upload.status_code == 404
    # Lists and bulk operations only ever hold the caller's own objects.
    listed = await call(api, "GET", "/change-requests", params={"customer_id": theirs["id"]})
    assert listed.json() == []
    moved = await call(
        api, "POST", "/service-points/move",
        json={"point_ids": [their_point], "collector_staff_id": api.a.driver_id},
    )  # fmt: skip
    assert moved.status_code == 422
    assert error_of(moved)[0] == "point_ids"
    assert (await call(api, "GET", "/areas")).json() == []
    seen = await call(
        api, "GET", "/customer-map",
        params={"south": 20.9, "west": 105.7, "north": 21.0, "east": 105.8, "zoom": 15},
    )  # fmt: skip
    assert their_point not in {p["id"] for p in seen.json()["points"]}
    # And tenant b's request is untouched by all of the above.
    still = await call(api, "GET", f"/change-requests/{their_request}", world=api.b)
    assert still.json()["status"] == "pending"


# ---------------------------------------------------------------- roles


async def test_who_may_read_edit_decide_and_capture(api: ApiUnderTest) -> None:
    created = await create(api, "KH-0001", "Nguyễn Văn A")
    point = created["points"][0]["id"]
    patch = {"revision": 1, "changes": {"contact_name": "Chị Hoa"}}
    capture = {"lat": 20.97101, "lon": 105.77101, "accuracy_m": 5, "captured_at": NOW.isoformat()}

    # Dispatchers and cashiers read the book but do not edit it.
    for role in (Role.DISPATCHER, Role.CASHIER):
        assert (await call(api, "GET", f"/customers/{created['id']}", role)).status_code == 200
        for method, path, body in [
            ("PATCH", f"/customers/{created['id']}", patch),
            ("POST", "/customers", new_customer("KH-9", "x")),
            ("POST", "/areas", {"code": "P-1", "name": "Phường 1"}),
            ("POST", "/change-requests", {"customer_id": created["id"], "changes": {"name": "x"},
                                          "reason": "r", "effective_date": "2026-12-04"}),
        ]:  # fmt: skip
            response = await call(api, method, path, role, json=body)
            assert response.status_code == 403, (role, method, path)
            assert error_of(response)[1].startswith(f"the role {role.value} may not")

    # A collector captures at the door and reads their own book, not the office's book.
    collector = api.a.users[Role.COLLECTOR].staff_id
    assert collector is not None
    for path in ("/customers", f"/customers/{created['id']}", f"/service-points/{point}",
                 "/change-requests", "/areas", f"/customers/{created['id']}/history"):  # fmt: skip
        assert (await call(api, "GET", path, Role.COLLECTOR)).status_code == 403, path
    assert (await call(api, "GET", f"/collectors/{collector}/book", Role.COLLECTOR)).json() == []
    other = await call(api, "GET", f"/collectors/{api.a.driver_id}/book", Role.COLLECTOR)
    assert other.status_code == 403
    assert error_of(other)[0] == "staff_id"
    for role in (Role.COLLECTOR, Role.CASHIER, Role.DRIVER, Role.ADMIN):
        captured = await call(api, "POST", f"/service-points/{point}/position", role, json=capture)
        assert captured.status_code == 200, (role, captured.text)
    for role in (Role.DISPATCHER, Role.ACCOUNTANT, Role.CUSTOMER):
        refused = await call(api, "POST", f"/service-points/{point}/position", role, json=capture)
        assert refused.status_code == 403, role

    # A customer's own login sees none of the book; only an admin verifies the audit chain.
    assert (await call(api, "GET", "/customers", Role.CUSTOMER)).status_code == 403
    assert (await call(api, "GET", "/audit/verify", Role.ACCOUNTANT)).status_code == 403
    assert (await call(api, "GET", "/audit/verify", Role.ADMIN)).json() == {
        "intact": True,
        "breaks": [],
    }
    anonymous = await api.client.get("/api/v1/customers")
    assert anonymous.status_code == 401


# ---------------------------------------------------------------- bad input


async def test_bad_input_is_a_4xx_naming_the_field(api: ApiUnderTest) -> None:
    created = await create(api, "KH-0001", "Nguyễn Văn A")
    point = created["points"][0]["id"]
    request = (
        await call(
            api, "POST", "/change-requests",
            json={"customer_id": created["id"], "service_point_id": point,
                  "changes": {"so_khau": 5}, "reason": "Sinh con", "effective_date": "2026-12-01"},
        )
    ).json()  # fmt: skip
    bad_code = new_customer("KH 1", "x")
    late = new_customer("KH-2", "x")
    late["points"][0]["valid_from"] = "1900-01-01"
    cases: list[tuple[str, str, dict[str, Any], str, int]] = [
        ("POST", "/customers", bad_code, "code", 422),
        ("POST", "/customers", late, "points[0].valid_from", 422),
        ("POST", "/customers", new_customer("KH-0001", "again"), "code", 409),
        ("PATCH", f"/customers/{created['id']}", {"revision": 1, "changes": {"email": "no"}},
         "email", 422),
        ("PATCH", f"/customers/{created['id']}", {"revision": 1, "changes": {"so_khau": 3}},
         "so_khau", 422),
        ("PATCH", f"/customers/{created['id']}", {"changes": {"name": "x"}}, "revision", 422),
        ("PATCH", f"/service-points/{point}",
         {"revision": 1, "changes": {"collector_staff_id": 987654}}, "collector_staff_id", 422),
        ("POST", f"/service-points/{point}/position",
         {"lat": 91, "lon": 105.77, "accuracy_m": 5, "captured_at": NOW.isoformat()}, "lat", 422),
        ("POST", f"/service-points/{point}/position",
         {"lat": 20.97, "lon": 105.77, "accuracy_m": 5, "captured_at": "2026-01-01T00:00:00Z"},
         "captured_at", 422),
        ("POST", "/service-points/move", {"point_ids": [point]}, "area_id", 422),
        ("POST", "/service-points/move", {"point_ids": []}, "point_ids", 422),
        ("POST", "/areas", {"code": "P 1", "name": "x"}, "code", 422),
        ("POST", "/change-requests",
         {"customer_id": created["id"], "changes": {"so_khau": 5}, "reason": "r",
          "effective_date": "2026-12-01"}, "service_point_id", 422),
        ("POST", "/change-requests",
         {"customer_id": created["id"], "service_point_id": point, "changes": {"so_khau": 500},
          "reason": "r", "effective_date": "2026-12-01"}, "so_khau", 422),
        ("POST", "/change-requests",
         {"customer_id": created["id"], "service_point_id": point, "changes": {"so_khau": 6},
          "reason": "", "effective_date": "2026-12-01"}, "reason", 422),
        ("POST", f"/change-requests/{request['id']}/approve", {"note": "x" * 2001}, "note", 422),
    ]  # fmt: skip
    for method, path, body, field, status in cases:
        response = await call(api, method, path, Role.ADMIN, json=body)
        assert response.status_code == status, (path, field, response.text)
        assert error_of(response)[0] == field, (path, response.text)
    for params, field in [
        ({"south": 21, "west": 105.7, "north": 20.9, "east": 105.8, "zoom": 15}, "north"),
        ({"south": 20.9, "west": 105.8, "north": 21, "east": 105.7, "zoom": 15}, "east"),
        ({"south": 20.9, "west": 105.7, "north": 21, "east": 105.8, "zoom": 40}, "zoom"),
        ({"south": 20.9, "west": 105.7, "north": 21, "east": 105.8, "zoom": 15,
          "collected_on": "1800-01-01"}, "collected_on"),
    ]:  # fmt: skip
        response = await call(api, "GET", "/customer-map", params=params)
        assert response.status_code == 422, response.text
        assert error_of(response)[0] == field, response.text
    search = await call(api, "GET", "/customers", params={"status": "sleeping"})
    assert search.status_code == 422
    assert error_of(search)[0] == "status"

    evidence = f"/change-requests/{request['id']}/evidence"
    for params, headers, content, field in [
        ({"filename": "../x.jpg"}, {"Content-Type": "image/jpeg"}, b"x", "filename"),
        ({"filename": "x.jpg"}, {"Content-Type": "not a type"}, b"x", "content-type"),
        ({"filename": "x.jpg"}, {"Content-Type": "image/jpeg"}, b"", "body"),
        ({}, {"Content-Type": "image/jpeg"}, b"x", "filename"),
    ]:
        response = await call(
            api, "POST", evidence, params=params, content=content, headers=headers
        )
        assert response.status_code == 422, response.text
        assert error_of(response)[0] == field, response.text
    too_big = await call(
        api, "POST", evidence, params={"filename": "big.bin"},
        content=b"\0" * (20 * 1024 * 1024 + 1),
        headers={"Content-Type": "application/octet-stream"},
    )  # fmt: skip
    assert too_big.status_code == 413
    assert error_of(too_big)[0] == "body"


# ---------------------------------------------------------------- edits and history


async def test_a_stale_edit_is_refused_and_changes_nothing(api: ApiUnderTest) -> None:
    created = await create(api, "KH-0001", "Nguyễn Văn A")
    first = await call(
        api, "PATCH", f"/customers/{created['id']}",
        json={"revision": 1, "changes": {"name": "Nguyễn Văn An", "billing_period": "quarterly"}},
    )  # fmt: skip
    assert first.status_code == 200, first.text
    assert first.json()["revision"] == 2
    assert first.json()["name"] == "Nguyễn Văn An"
    second = await call(
        api, "PATCH", f"/customers/{created['id']}", Role.ADMIN,
        json={"revision": 1, "changes": {"name": "Người khác"}},
    )  # fmt: skip
    assert second.status_code == 409
    field, reason = error_of(second)
    assert field == "revision"
    assert "someone else" in reason
    assert (await call(api, "GET", f"/customers/{created['id']}")).json()["name"] == "Nguyễn Văn An"

    point = created["points"][0]
    moved = await call(
        api, "PATCH", f"/service-points/{point['id']}",
        json={"revision": point["revision"], "changes": {"category": "bán tạp hoá"}},
    )  # fmt: skip
    assert moved.status_code == 200
    assert moved.json()["category"] == "bán tạp hoá"
    stale = await call(
        api, "PATCH", f"/service-points/{point['id']}",
        json={"revision": point["revision"], "changes": {"category": "khác"}},
    )  # fmt: skip
    assert stale.status_code == 409
    assert error_of(stale)[0] == "revision"


async def test_history_is_the_customers_audit_log_in_one_call(api: ApiUnderTest) -> None:
    created = await create(api, "KH-0001", "Nguyễn Văn A")
    other = await create(api, "KH-0002", "Trần Thị Bé")
    await call(
        api, "PATCH", f"/customers/{created['id']}",
        json={"revision": 1, "changes": {"phones": ["0987 654 321"]}},
    )  # fmt: skip
    history = await call(api, "GET", f"/customers/{created['id']}/history", Role.DISPATCHER)
    assert history.status_code == 200
    entries = history.json()
    assert [(e["entity"], e["action"]) for e in entries] == [
        ("customer", "update"),
        ("service_point", "create"),
        ("customer", "create"),
    ]
    update = entries[0]
    assert update["actor"] == "accountant"
    assert update["actor_user"] == api.a.users[Role.ACCOUNTANT].id
    assert update["before"] == {"phones": ["0912 345 678"]}
    assert update["after"] == {"phones": ["0987 654 321"]}
    assert all(e["customer_id"] == created["id"] for e in entries)
    assert entries[0]["seq"] > entries[1]["seq"] > entries[2]["seq"]
    assert other["id"] not in {e["customer_id"] for e in entries}
    older = await call(
        api, "GET", f"/customers/{created['id']}/history",
        params={"before_seq": entries[0]["seq"], "limit": 1},
    )  # fmt: skip
    assert [e["seq"] for e in older.json()] == [entries[1]["seq"]]
    assert (await call(api, "GET", "/audit/verify", Role.ADMIN)).json()["intact"] is True


# ---------------------------------------------------------------- change requests


async def test_a_change_request_applies_when_another_person_approves_it(
    api: ApiUnderTest,
) -> None:
    created = await create(api, "KH-0001", "Nguyễn Văn A")
    point = created["points"][0]["id"]
    body = {
        "customer_id": created["id"],
        "service_point_id": point,
        "changes": {"so_khau": 5},
        "reason": "Sinh thêm con, đã đăng ký tạm trú",
        "effective_date": "2026-11-01",
    }
    submitted = await call(api, "POST", "/change-requests", json=body)
    assert submitted.status_code == 201, submitted.text
    request = submitted.json()
    assert request["status"] == "pending"
    assert request["diff"] == {"so_khau": {"from": 4, "to": 5}}
    assert request["submitted_by"] == api.a.users[Role.ACCOUNTANT].id
    photo = b"\xff\xd8\xff\xe0 a photo of the household book"
    uploaded = await call(
        api, "POST", f"/change-requests/{request['id']}/evidence",
        params={"filename": "sổ hộ khẩu.jpg"}, content=photo,
        headers={"Content-Type": "image/jpeg"},
    )  # fmt: skip
    assert uploaded.status_code == 201, uploaded.text
    evidence = uploaded.json()
    assert evidence["size_bytes"] == len(photo)
    assert "content" not in evidence

    customer = (await call(api, "GET", f"/customers/{created['id']}")).json()
    assert [r["id"] for r in customer["open_change_requests"]] == [request["id"]]
    pending = (await call(api, "GET", "/change-requests", params={"status": "pending"})).json()
    assert [(r["id"], r["customer_name"]) for r in pending] == [(request["id"], "Nguyễn Văn A")]
    detail = (await call(api, "GET", f"/change-requests/{request['id']}", Role.CASHIER)).json()
    assert [e["filename"] for e in detail["evidence"]] == ["sổ hộ khẩu.jpg"]
    download = await call(
        api, "GET", f"/change-requests/{request['id']}/evidence/{evidence['id']}", Role.DISPATCHER
    )
    assert download.status_code == 200
    assert download.content == photo
    assert download.headers["content-type"] == "image/jpeg"
    assert download.headers["content-disposition"].startswith("attachment;")
    assert "sandbox" in download.headers["content-security-policy"]

    # Four eyes: the submitter may not approve; a dispatcher may not decide at all.
    own = await call(api, "POST", f"/change-requests/{request['id']}/approve", json={"note": ""})
    assert own.status_code == 409
    assert error_of(own)[0] == "decided_by"
    dispatcher = await call(
        api, "POST", f"/change-requests/{request['id']}/approve", Role.DISPATCHER, json={}
    )
    assert dispatcher.status_code == 403
    approved = await call(
        api, "POST", f"/change-requests/{request['id']}/approve", Role.ADMIN,
        json={"note": "Đã xem sổ hộ khẩu"},
    )  # fmt: skip
    assert approved.status_code == 200, approved.text
    decided = approved.json()
    assert decided["status"] == "applied"
    assert decided["decided_by"] == api.a.users[Role.ADMIN].id

    assert (await call(api, "GET", f"/service-points/{point}")).json()["so_khau"] == 5
    terms = (await call(api, "GET", f"/service-points/{point}/terms")).json()
    assert [
        (t["valid_from"], t["valid_to"], t["so_khau"], t["change_request_id"]) for t in terms
    ] == [
        ("2026-01-01", "2026-11-01", 4, None),
        ("2026-11-01", None, 5, request["id"]),
    ]
    again = await call(api, "POST", f"/change-requests/{request['id']}/reject", Role.ADMIN, json={})
    assert again.status_code == 409
    assert error_of(again)[0] == "status"
    actions = [
        (e["entity"], e["action"])
        for e in (await call(api, "GET", f"/customers/{created['id']}/history")).json()
    ]
    assert actions[:4] == [
        ("change_request", "apply"),
        ("service_point", "change_terms"),
        ("change_request", "approve"),
        ("change_request", "add_evidence"),
    ]


async def test_rejected_and_cancelled_requests_never_apply(api: ApiUnderTest) -> None:
    created = await create(api, "KH-0001", "Nguyễn Văn A")
    point = created["points"][0]["id"]

    async def submit(so_khau: int) -> int:
        response = await call(
            api, "POST", "/change-requests",
            json={"customer_id": created["id"], "service_point_id": point,
                  "changes": {"so_khau": so_khau}, "reason": "Chuyển đi",
                  "effective_date": "2026-12-01"},
        )  # fmt: skip
        assert response.status_code == 201, response.text
        request_id: int = response.json()["id"]
        return request_id

    rejected = await submit(2)
    response = await call(
        api, "POST", f"/change-requests/{rejected}/reject", Role.ADMIN, json={"note": "Thiếu giấy"}
    )
    assert response.json()["status"] == "rejected"
    cancelled = await submit(3)
    by_other = await call(api, "POST", f"/change-requests/{cancelled}/cancel", Role.ADMIN, json={})
    assert by_other.status_code == 409
    assert error_of(by_other)[0] == "submitted_by"
    response = await call(api, "POST", f"/change-requests/{cancelled}/cancel", json={})
    assert response.json()["status"] == "cancelled"
    assert (await call(api, "GET", f"/service-points/{point}")).json()["so_khau"] == 4
    statuses = {
        r["id"]: r["status"]
        for r in (
            await call(api, "GET", "/change-requests", params={"customer_id": created["id"]})
        ).json()
    }
    assert statuses == {rejected: "rejected", cancelled: "cancelled"}


# ---------------------------------------------------------------- field, map, areas, books


async def test_a_capture_at_the_door_applies_or_waits_for_the_office(api: ApiUnderTest) -> None:
    created = await create(api, "KH-0001", "Nguyễn Văn A")  # placed by GPS at 20.9710, 105.7710
    point = created["points"][0]["id"]
    at = NOW.isoformat()
    near = await call(
        api, "POST", f"/service-points/{point}/position", Role.COLLECTOR,
        json={"lat": 20.97105, "lon": 105.7710, "accuracy_m": 6, "captured_at": at},
    )  # fmt: skip
    assert near.json()["outcome"] == "applied"
    assert near.json()["moved_m"] < 10
    vague = await call(
        api, "POST", f"/service-points/{point}/position", Role.COLLECTOR,
        json={"lat": 20.9750, "lon": 105.7710, "accuracy_m": 400, "captured_at": at},
    )  # fmt: skip
    assert vague.json()["outcome"] == "rejected_accuracy"
    far = await call(
        api, "POST", f"/service-points/{point}/position", Role.COLLECTOR,
        json={"lat": 20.9720, "lon": 105.7710, "accuracy_m": 5, "captured_at": at},
    )  # fmt: skip
    outcome = far.json()
    assert outcome["outcome"] == "needs_approval"
    assert outcome["change_request_id"] is not None
    request = (await call(api, "GET", f"/change-requests/{outcome['change_request_id']}")).json()
    assert request["submitted_via"] == "field"
    assert set(request["diff"]) == {
        "lat",
        "lon",
        "accuracy_m",
    }
    approved = await call(
        api, "POST", f"/change-requests/{request['id']}/approve", Role.ACCOUNTANT, json={}
    )
    assert approved.json()["status"] == "applied"
    placed = (await call(api, "GET", f"/service-points/{point}")).json()
    assert (placed["lat"], placed["lon"]) == (20.9720, 105.7710)


async def test_the_map_answers_points_filtered_and_collected(api: ApiUnderTest) -> None:
    first = await create(api, "KH-0001", "Nguyễn Văn A", lat=20.9710, lon=105.7710)
    await create(api, "KH-0002", "Trần Thị Bé", lat=20.9720, lon=105.7720)
    view = {"south": 20.96, "west": 105.76, "north": 20.98, "east": 105.78, "zoom": 16}
    answer = await call(api, "GET", "/customer-map", Role.CASHIER, params=view)
    assert answer.status_code == 200, answer.text
    shown = answer.json()
    assert shown["clusters"] == []
    codes = {p["code"]: p for p in shown["points"]}
    assert {"KH-0001", "KH-0002", "KH-tenant-a"} <= set(codes)
    assert codes["KH-0001"]["collected"] is None
    assert codes["KH-0001"]["status"] == "active"
    with_visits = await call(
        api, "GET", "/customer-map", params={**view, "collected_on": "2026-12-04"}
    )
    assert {p["collected"] for p in with_visits.json()["points"]} <= {True, False}
    elsewhere = await call(
        api, "GET", "/customer-map",
        params={**view, "south": 10.0, "north": 10.1, "west": 106.0, "east": 106.1},
    )  # fmt: skip
    assert elsewhere.json()["points"] == []
    assert elsewhere.json()["clusters"] == []
    area = (await call(api, "POST", "/areas", json={"code": "P-VQ", "name": "Văn Quán"})).json()
    moved = await call(
        api, "POST", "/service-points/move",
        json={"point_ids": [first["points"][0]["id"]], "area_id": area["id"]},
    )  # fmt: skip
    assert moved.json() == {"moved": 1}
    in_area = await call(api, "GET", "/customer-map", params={**view, "area_id": area["id"]})
    assert [p["code"] for p in in_area.json()["points"]] == ["KH-0001"]
    search = await call(api, "GET", "/customers", params={"area_id": area["id"]})
    assert [p["code"] for p in search.json()] == ["KH-0001"]


async def test_areas_moves_and_a_collectors_book(api: ApiUnderTest) -> None:
    collector = api.a.users[Role.COLLECTOR].staff_id
    assert collector is not None
    created = await call(
        api, "POST", "/areas",
        json={"code": "P-VQ", "name": "Văn Quán", "ward": "Văn Quán",
              "collector_staff_id": collector},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    again = await call(api, "POST", "/areas", json={"code": "P-VQ", "name": "again"})
    assert again.status_code == 409
    assert error_of(again)[0] == "code"
    assert [a["code"] for a in (await call(api, "GET", "/areas", Role.CASHIER)).json()] == ["P-VQ"]

    ids = [(await create(api, f"KH-000{n}", f"Hộ {n}"))["points"][0]["id"] for n in range(1, 4)]
    moved = await call(
        api,
        "POST",
        "/service-points/move",
        json={"point_ids": ids, "collector_staff_id": collector},
    )
    assert moved.json() == {"moved": 3}
    order = [ids[2], ids[0], ids[1]]
    book = await call(api, "PUT", f"/collectors/{collector}/book", json={"point_ids": order})
    assert book.status_code == 200, book.text
    assert [p["id"] for p in book.json()] == order
    own = await call(api, "GET", f"/collectors/{collector}/book", Role.COLLECTOR)
    assert [(p["id"], p["book_order"]) for p in own.json()] == [
        (i, n + 1) for n, i in enumerate(order)
    ]
    partial = await call(api, "PUT", f"/collectors/{collector}/book", json={"point_ids": order[:2]})
    assert partial.status_code == 422
    assert error_of(partial)[0] == "point_ids"
    unknown = await call(api, "GET", "/collectors/987654/book")
    assert unknown.status_code == 404
