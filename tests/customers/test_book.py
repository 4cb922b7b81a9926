"""Customers and service points: create, read, edit, search, and each tenant's own book."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import audit
import customers
import fleet
from customers import PointFilter, Status
from customers.text import fold, search_text
from storage import Pool
from tests.customers.book import AT, CLERK, business, household, make_book


def test_fold_drops_diacritics_case_and_punctuation() -> None:
    assert fold("Nguyễn Văn Á") == "nguyen van a"
    assert fold("ĐẶNG Thị Đào, ngõ 5/12") == "dang thi dao ngo 5 12"
    assert fold("  Ỷ   Lan ") == "y lan"


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_fold_never_fails_and_is_idempotent(text: str) -> None:
    folded = fold(text)
    assert fold(folded) == folded
    assert set(folded) <= set("abcdefghijklmnopqrstuvwxyz0123456789 ")


def reference_search_text(
    customer_code: str,
    point_code: str,
    name: str,
    phones: Sequence[str],
    address: str,
    street: str,
    ward: str,
    tax_code: str | None,
) -> str:
    """What a point is found by, written plainly: every part folded where it is used."""
    parts = [
        fold(point_code),
        fold(customer_code) if customer_code != point_code else "",
        fold(name),
        " ".join(re.sub("[^0-9]", "", p) for p in phones),
        fold(address),
        fold(street) if street and fold(street) not in fold(address) else "",
        fold(ward) if ward and fold(ward) not in fold(address) else "",
        tax_code or "",
    ]
    return " ".join(p for p in parts if p)


# Few letters, so that streets and wards often fold into a part of the address.
_part = st.text(alphabet="aAáÁđĐeê 1.-", max_size=10) | st.text(max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(_part, min_size=7, max_size=7),
    phones=st.lists(st.text(alphabet="0123456789 .+-", max_size=12), max_size=3),
)
def test_search_text_is_the_plain_definition(parts: list[str], phones: list[str]) -> None:
    customer, point, name, address, street, ward, tax = parts
    point = point or customer
    plain = reference_search_text(customer, point, name, phones, address, street, ward, tax or None)
    assert plain == search_text(
        customer_code=customer, point_code=point, name=name, phones=phones,
        address=address, street=street, ward=ward, tax_code=tax or None,
    )  # fmt: skip


async def test_a_customer_with_its_point_is_created_and_audited(pool: Pool) -> None:
    book = await make_book(pool, "book-a")
    async with pool.connection() as conn:
        created = await customers.create_customer(
            conn, book.tenant_id, CLERK, AT, household("KH001", "Nguyễn Văn Á",
                                                       area_id=book.area_id)
        )  # fmt: skip
        points = await customers.points_of(conn, book.tenant_id, created.id)
        history = await audit.history(conn, book.tenant_id, customer_id=created.id)
        terms = await customers.terms_of(conn, book.tenant_id, points[0].id)
    assert created.phones == ["0912 345 678"]
    assert [(p.code, p.so_khau, p.status) for p in points] == [("KH001", 4, Status.ACTIVE)]
    assert [(e.entity, e.action) for e in history] == [
        ("service_point", "create"),
        ("customer", "create"),
    ]
    assert [(t.valid_from, t.valid_to, t.area_group, t.so_khau) for t in terms] == [
        (dt.date(2026, 1, 1), None, "urban", 4)
    ]


async def test_codes_are_unique_per_company(pool: Pool) -> None:
    book = await make_book(pool, "book-b")
    other = await make_book(pool, "book-b2")
    async with pool.connection() as conn:
        await customers.create_customer(conn, book.tenant_id, CLERK, AT, household("KH1", "A"))
        with pytest.raises(customers.Conflict, match=r"^code: the customer KH1 exists"):
            await customers.create_customer(conn, book.tenant_id, CLERK, AT, household("KH1", "B"))
        await conn.rollback()
        # Another company may use the same code.
        await customers.create_customer(conn, other.tenant_id, CLERK, AT, household("KH1", "C"))


async def test_search_ignores_diacritics_and_case_and_finds_phones(pool: Pool) -> None:
    book = await make_book(pool, "book-c")
    async with pool.connection() as conn:
        for code, name, phone in (
            ("KH1", "Nguyễn Văn A", "0912 345 678"),
            ("KH2", "Nguyễn Văn Ánh", "0988 000 111"),
            ("KH3", "Trần Thị Bình", "024 3856 1234"),
        ):
            await customers.create_customer(
                conn, book.tenant_id, CLERK, AT, household(code, name, phones=(phone,))
            )
        found = await customers.search_points(conn, book.tenant_id, "nguyen van a")
        assert [p.code for p in found] == ["KH1", "KH2"]  # "a" is in "anh" too
        assert [p.code for p in await customers.search_points(conn, book.tenant_id, "ÁNH")] == [
            "KH2"
        ]
        by_phone = await customers.search_points(conn, book.tenant_id, "38561234")
        assert [p.code for p in by_phone] == ["KH3"]
        by_address = await customers.search_points(conn, book.tenant_id, "nguyen trai binh")
        assert [p.code for p in by_address] == ["KH3"]
        # House numbers match whole or from their start; "2" is not in "12".
        assert len(await customers.search_points(conn, book.tenant_id, "12 nguyen")) == 3
        assert await customers.search_points(conn, book.tenant_id, "2 nguyen trai") == []
        assert await customers.search_points(conn, book.tenant_id, "%") != []  # no wildcard
        assert await customers.search_points(conn, book.tenant_id, "khong co ai") == []


async def test_search_filters_and_pages(pool: Pool) -> None:
    book = await make_book(pool, "book-d")
    async with pool.connection() as conn:
        for n in range(5):
            await customers.create_customer(
                conn, book.tenant_id, CLERK, AT,
                household(f"KH{n}", f"Hộ {n}", area_id=book.area_id if n % 2 else None),
            )  # fmt: skip
        await customers.create_customer(
            conn, book.tenant_id, CLERK, AT, business("DN1", "Quán Phở", "2")
        )
        in_area = await customers.search_points(
            conn, book.tenant_id, filters=PointFilter(area_id=book.area_id)
        )
        assert [p.code for p in in_area] == ["KH1", "KH3"]
        restaurants = await customers.search_points(
            conn, book.tenant_id, filters=PointFilter(customer_class="restaurant")
        )
        assert [p.code for p in restaurants] == ["DN1"]
        # Words match from a word's start: "ho" finds the Hộ households, not Quán Phở.
        page = await customers.search_points(conn, book.tenant_id, "ho", limit=2, offset=2)
        assert [p.code for p in page] == ["KH2", "KH3"]
        assert [p.code for p in await customers.search_points(conn, book.tenant_id, "pho")] == [
            "DN1"
        ]


async def test_no_company_sees_another_companys_customers(pool: Pool) -> None:
    mine = await make_book(pool, "book-e")
    theirs = await make_book(pool, "book-e2")
    async with pool.connection() as conn:
        secret = await customers.create_customer(
            conn, theirs.tenant_id, CLERK, AT, household("KH9", "Lê Bí Mật")
        )
        their_point = (await customers.points_of(conn, theirs.tenant_id, secret.id))[0]
        assert await customers.search_points(conn, mine.tenant_id, "le bi mat") == []
        with pytest.raises(customers.NotFound):
            await customers.get_customer(conn, mine.tenant_id, secret.id)
        with pytest.raises(customers.NotFound):
            await customers.get_point(conn, mine.tenant_id, their_point.id)
        with pytest.raises(customers.NotFound):
            await customers.update_customer(
                conn, mine.tenant_id, CLERK, AT, secret.id, {"name": "x"}
            )
        # Nor can one company's point be put in the other's area.
        with pytest.raises(customers.InvalidValue, match=r"^area_id: no area"):
            await customers.update_point(
                conn, theirs.tenant_id, CLERK, AT, their_point.id, {"area_id": mine.area_id}
            )


async def test_an_edit_is_audited_refreshes_search_and_checks_the_revision(pool: Pool) -> None:
    book = await make_book(pool, "book-f")
    async with pool.connection() as conn:
        created = await customers.create_customer(
            conn, book.tenant_id, CLERK, AT, household("KH1", "Phạm Văn Cũ")
        )
        renamed = await customers.update_customer(
            conn, book.tenant_id, audit.Actor("lan", None), AT, created.id,
            {"name": "Phạm Văn Mới", "email": "moi@example.vn"}, expected_revision=1,
        )  # fmt: skip
        assert (renamed.name, renamed.revision) == ("Phạm Văn Mới", 2)
        assert [p.code for p in await customers.search_points(conn, book.tenant_id, "moi")] == [
            "KH1"
        ]
        assert await customers.search_points(conn, book.tenant_id, "pham van cu") == []
        await conn.commit()
        with pytest.raises(customers.Conflict, match=r"^revision: the customer was changed"):
            await customers.update_customer(
                conn, book.tenant_id, CLERK, AT, created.id, {"name": "X"}, expected_revision=1
            )
        await conn.rollback()
        last = (await audit.history(conn, book.tenant_id, customer_id=created.id))[0]
    assert (last.actor, last.action) == ("lan", "update")
    assert last.before == {"name": "Phạm Văn Cũ", "email": None}
    assert last.after == {"name": "Phạm Văn Mới", "email": "moi@example.vn"}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"tax_code": "12345"}, "tax_code"),
        ({"phones": ["abc"]}, "phones.0"),
        ({"billing_period": "weekly"}, "billing_period"),
        ({"so_khau": 3}, "so_khau"),  # a billing term: goes through a change request
    ],
)
async def test_a_bad_edit_names_its_field(
    pool: Pool, changes: dict[str, object], field: str
) -> None:
    book = await make_book(pool, "book-g")
    async with pool.connection() as conn:
        created = await customers.create_customer(
            conn, book.tenant_id, CLERK, AT, household("KH1", "A")
        )
        with pytest.raises(customers.InvalidValue, match=f"^{field}: "):
            await customers.update_customer(conn, book.tenant_id, CLERK, AT, created.id, changes)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=st.text(alphabet=st.characters(blacklist_characters="\x00"), max_size=60))
async def test_any_search_text_is_answered(pool: Pool, query: str) -> None:
    async with pool.connection() as conn:
        tenant = (await fleet.ensure_tenant(conn, "book-h", "book-h")).id
        found = await customers.search_points(conn, tenant, query)
    assert found == []  # nobody in this company: a query of any text finds no one


async def test_both_ways_of_finding_a_page_give_the_same_page(
    pool: Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Walking the code index (many matches), sorting the matches (few), and falling back
    from the first to the second when the walk takes too long all list the same points."""
    from psycopg.errors import QueryCanceled

    import customers.search as search

    book = await make_book(pool, "book-i")
    async with pool.connection() as conn:
        for n in range(12):
            await customers.create_customer(
                conn, book.tenant_id, CLERK, AT, household(f"KH{n:02}", f"Nguyễn Văn {n}")
            )
        sorted_page = await customers.search_points(conn, book.tenant_id, "nguyen van", limit=5)
        monkeypatch.setattr(search, "ORDERED_SCAN_FROM_MATCHES", 0)
        walked_page = await customers.search_points(conn, book.tenant_id, "nguyen van", limit=5)
        real_page = search._page
        orders: list[str] = []

        async def slow_walk(*args: object) -> list[customers.ServicePoint]:
            orders.append(str(args[-1]))
            if args[-1] == "p.code":
                raise QueryCanceled("canceling statement due to statement timeout")
            return await real_page(*args)  # type: ignore[arg-type]

        monkeypatch.setattr(search, "_page", slow_walk)
        fallen_back = await customers.search_points(conn, book.tenant_id, "nguyen van", limit=5)
        # The timeout was only the walk's: the connection's own setting is back.
        cursor = await conn.execute("SHOW statement_timeout")
        assert await cursor.fetchone() == ("0",)
    assert [p.code for p in sorted_page] == ["KH00", "KH01", "KH02", "KH03", "KH04"]
    assert walked_page == sorted_page
    assert fallen_back == sorted_page
    assert orders == ["p.code", "p.code || ''"]
