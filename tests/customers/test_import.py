"""Importing and exporting the customer spreadsheets, on a real PostgreSQL: bad rows are
reported by row number and the good ones kept; a file imported again changes nothing; a
changed row updates and is audited; CSV and XLSX agree; an export imports back unchanged."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import itertools
import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import AsyncConnection

import audit
import fleet
from customers import importer, terms
from customers.importer import ImportReport, export_rows, import_rows
from customers.spreadsheets import (
    COLUMNS,
    HEADERS,
    Cell,
    Sheet,
    SheetRow,
    read_sheet,
    sheet_writer,
)
from customers.text import search_text
from sanitrack import cli
from storage import Pool

NOW = dt.datetime(2025, 6, 10, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=7)))
TODAY = NOW.date()
ACTOR = audit.Actor("import test")
VI = HEADERS  # key -> the Vietnamese header


def household(code: str, **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "customer_code": code,
        "name": "Nguyễn Văn Ánh",
        "kind": "hộ gia đình",
        "phones": "0912 345 678",
        "address": "Số 12 Ngõ 5 Tô Hiệu",
        "street": "Tô Hiệu",
        "ward": "Quang Trung",
        "area_code": "QT",
        "lat": "20,9713",
        "lon": "105,7788",
        "so_khau": "4",
        "collector": "C1",
        "status": "đang thu",
        "valid_from": "01/01/2025",
    }
    return row | changes


def business(code: str, **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "customer_code": code,
        "point_code": f"{code}-1",
        "name": "Công ty TNHH Phở Hà",
        "kind": "doanh nghiệp",
        "phones": "024 3826 1234; 0987.654.321",
        "email": "ketoan@phoha.vn",
        "tax_code": "0101234567",
        "address": "45 Hàng Bông",
        "ward": "Hàng Gai",
        "area_code": "HG",
        "lat": "21.0312",
        "lon": "105.8476",
        "accuracy_m": "8",
        "volume_m3_per_month": "2,5",
        "weight_kg_per_month": "1.250,75",
        "contract_price_vnd": "1.500.000",
        "services": "thu gom; tái chế",
        "customer_class": "restaurant",
        "category": "Nhà hàng",
        "billing_period": "quý",
        "collector": "C1",
        "cashier": "K1",
        "route_code": "R-07",
        "valid_from": "2025-03-01",
    }
    return row | changes


def csv_bytes(rows: Sequence[Mapping[str, Any]], *, headers: Mapping[str, str] = VI) -> bytes:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([headers.get(k, k) for k in keys])
    for r in rows:
        writer.writerow(["" if r.get(k) is None else r[k] for k in keys])
    return out.getvalue().encode("utf-8-sig")


def xlsx_bytes(rows: Sequence[Mapping[str, Any]]) -> bytes:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append([VI[k] for k in keys])
    for r in rows:
        sheet.append([r.get(k) for k in keys])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


async def company(conn: AsyncConnection[Any]) -> int:
    """A company with two areas, a collector and a cashier."""
    tenant = await fleet.ensure_tenant(conn, f"t-{uuid.uuid4().hex[:8]}", "Môi trường Hà Đông")
    await fleet.ensure_staff(conn, tenant.id, "C1", "Trần Văn Gom", fleet.StaffRole.COLLECTOR)
    await fleet.ensure_staff(conn, tenant.id, "C2", "Lê Thị Thu", fleet.StaffRole.COLLECTOR)
    await fleet.ensure_staff(conn, tenant.id, "K1", "Phạm Thu Ngân", fleet.StaffRole.CASHIER)
    await conn.execute(
        "INSERT INTO areas (tenant_id, code, name, ward, area_group) VALUES"
        " (%s, 'QT', 'Quang Trung', 'Quang Trung', 'urban'),"
        " (%s, 'HG', 'Hàng Gai', 'Hàng Gai', 'urban'),"
        " (%s, 'DL', 'Đồng Mai', 'Đồng Mai', 'rural')",
        (tenant.id, tenant.id, tenant.id),
    )
    return tenant.id


async def run(
    conn: AsyncConnection[Any],
    tenant_id: int,
    data: bytes,
    *,
    effective: dt.date = TODAY,
    now: dt.datetime = NOW,
    progress: list[tuple[int, int]] | None = None,
) -> ImportReport:
    sheet = read_sheet(data)
    return await import_rows(
        conn,
        tenant_id,
        ACTOR,
        sheet,
        filename=f"book.{sheet.format}",
        file_sha256=hashlib.sha256(data).hexdigest(),
        fmt=sheet.format,
        now=now,
        effective_date=effective,
        progress=(lambda d, t: progress.append((d, t))) if progress is not None else None,
    )


def counts(report: ImportReport) -> tuple[int, int, int, int]:
    return (report.rows_created, report.rows_updated, report.rows_unchanged, report.rows_rejected)


async def exported(conn: AsyncConnection[Any], tenant_id: int) -> list[dict[str, Any]]:
    return [row async for row in export_rows(conn, tenant_id)]


def export_bytes(rows: Sequence[Mapping[str, Any]], fmt: str) -> bytes:
    buffer = io.BytesIO()
    writer = sheet_writer(fmt, buffer)  # type: ignore[arg-type]
    for row in rows:
        writer.write(row)
    writer.close()
    return buffer.getvalue()


async def audit_count(conn: AsyncConnection[Any], tenant_id: int) -> int:
    cursor = await conn.execute("SELECT count(*) FROM audit_log WHERE tenant_id = %s", (tenant_id,))
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


# ---------------------------------------------------------------- rejections


async def test_bad_rows_are_reported_by_row_number_and_good_rows_kept(pool: Pool) -> None:
    async with pool.connection() as conn:
        tenant_id = await company(conn)
        rows = [
            household("KH1"),  # row 2
            household("KH2", so_khau="bốn"),  # 3: not a number
            household("KH3", lat="", lon=""),  # 4: no position
            household("KH4", lat="91", lon="105.8"),  # 5: off the globe
            household("KH1", name="Nguyễn Văn Ánh"),  # 6: point KH1 again
            household("KH5", area_code="ZZ"),  # 7: unknown area
            household("KH6", collector="NOBODY"),  # 8: unknown collector
            household("KH7", kind="cung điện"),  # 9: unknown kind
            household("KH8", weight_kg_per_month="1.234"),  # 10: ambiguous
            household("KH9", valid_from="31/02/2025"),  # 11: no such day
            household("KH10", phones="0912345678; 0987654321"),  # 12: good, two phones
            business("DN1"),  # 13: good
            business("DN1", point_code="DN1-2", name="Phở Hà khác"),  # 14: the customer differs
            household("KH 11"),  # 15: a code with a space
        ]
        report = await run(conn, tenant_id, csv_bytes(rows))
    assert report.rows_total == 14
    assert counts(report) == (3, 0, 0, 11)
    got = {(r.row_number, r.field): r for r in report.rejections}
    assert got[(3, "so_khau")].value == "bốn"
    assert "not a number" in got[(3, "so_khau")].reason
    assert "missing position" in got[(4, "lat")].reason
    assert "missing position" in got[(4, "lon")].reason
    assert "at most 90" in got[(5, "lat")].reason
    assert "duplicate point code: row 2" in got[(6, "point_code")].reason
    assert got[(7, "area_code")].reason == "no such area"
    assert got[(8, "collector")].value == "NOBODY"
    assert "hộ gia đình" in got[(9, "kind")].reason
    assert "ambiguous" in got[(10, "weight_kg_per_month")].reason
    assert "no such day" in got[(11, "valid_from")].reason
    assert "differs from row 13" in got[(14, "name")].reason
    assert "code of 1-32" in got[(15, "customer_code")].reason
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT p.code, c.phones FROM service_points p JOIN customers c"
            " ON c.id = p.customer_id WHERE p.tenant_id = %s ORDER BY p.code",
            (tenant_id,),
        )
        assert await cursor.fetchall() == [
            ("DN1-1", ["024 3826 1234", "0987.654.321"]),
            ("KH1", ["0912 345 678"]),
            ("KH10", ["0912345678", "0987654321"]),
        ]
        cursor = await conn.execute(
            "SELECT i.rows_total, i.rows_created, i.rows_rejected, count(r.*)"
            " FROM customer_imports i JOIN customer_import_rejections r ON r.import_id = i.id"
            " WHERE i.id = %s GROUP BY i.id",
            (report.import_id,),
        )
        assert await cursor.fetchone() == (14, 3, 11, len(report.rejections))


async def test_a_point_stored_under_another_customer_is_rejected(pool: Pool) -> None:
    async with pool.connection() as conn:
        tenant_id = await company(conn)
        await run(conn, tenant_id, csv_bytes([household("KH1")]))
        report = await run(
            conn,
            tenant_id,
            csv_bytes([household("KH2", point_code="KH1"), household("KH3")]),
        )
    assert counts(report) == (1, 0, 0, 1)
    (rejection,) = report.rejections
    assert (rejection.row_number, rejection.field) == (2, "point_code")
    assert "belongs to customer KH1" in rejection.reason


async def test_a_file_without_name_or_position_columns_only_updates(pool: Pool) -> None:
    async with pool.connection() as conn:
        tenant_id = await company(conn)
        await run(conn, tenant_id, csv_bytes([household("KH1")]))
        partial = csv_bytes(
            [{"customer_code": "KH1", "so_khau": "5"}, {"customer_code": "KH2", "so_khau": "2"}]
        )
        report = await run(conn, tenant_id, partial, effective=TODAY)
        cursor = await conn.execute(
            "SELECT c.name, p.so_khau, p.lat, p.collector_staff_id IS NOT NULL"
            " FROM service_points p JOIN customers c ON c.id = p.customer_id"
            " WHERE p.tenant_id = %s",
            (tenant_id,),
        )
        assert await cursor.fetchall() == [("Nguyễn Văn Ánh", 5, 20.9713, True)]
    assert counts(report) == (0, 1, 0, 1)
    assert "no 'Tên khách hàng' and 'Loại' column" in report.rejections[0].reason


# ---------------------------------------------------------------- idempotence and updates


async def test_the_same_file_again_changes_nothing(pool: Pool) -> None:
    rows = [household("KH1"), household("KH2", so_khau="6"), business("DN1")]
    rows.append(business("DN1", point_code="DN1-2", address="9 Hàng Bông", lat="21.0315"))
    data = csv_bytes(rows)
    async with pool.connection() as conn:
        tenant_id = await company(conn)
        first = await run(conn, tenant_id, data)
        entries = await audit_count(conn, tenant_id)
        before = await exported(conn, tenant_id)
        cursor = await conn.execute("SELECT count(*) FROM service_point_terms")
        terms_before = await cursor.fetchone()
        again = await run(conn, tenant_id, data, effective=TODAY + dt.timedelta(days=3))
        assert await audit_count(conn, tenant_id) == entries
        assert await exported(conn, tenant_id) == before
        cursor = await conn.execute("SELECT count(*) FROM service_point_terms")
        assert await cursor.fetchone() == terms_before
        assert await audit.verify_chain(conn, tenant_id) == []
    assert counts(first) == (4, 0, 0, 0)
    assert counts(again) == (0, 0, 4, 0)
    assert entries == 3 + 4  # three customers, four points


async def test_a_changed_row_updates_from_the_effective_date_and_is_audited(pool: Pool) -> None:
    async with pool.connection() as conn:
        tenant_id = await company(conn)
        await run(conn, tenant_id, csv_bytes([household("KH1"), household("KH2")]))
        changed = household(
            "KH1",
            name="Nguyễn Văn Ánh (chủ hộ)",
            address="Số 14 Ngõ 5 Tô Hiệu",
            so_khau="5",
            collector="C2",
            area_code="DL",
        )
        effective = dt.date(2025, 6, 1)
        report = await run(
            conn, tenant_id, csv_bytes([changed, household("KH2")]), effective=effective
        )
        assert counts(report) == (0, 1, 1, 0)
        cursor = await conn.execute(
            "SELECT t.valid_from, t.valid_to, t.so_khau, t.area_group FROM service_point_terms t"
            " JOIN service_points p ON p.id = t.service_point_id WHERE p.code = 'KH1'"
            " AND p.tenant_id = %s ORDER BY t.valid_from",
            (tenant_id,),
        )
        assert await cursor.fetchall() == [
            (dt.date(2025, 1, 1), effective, 4, "urban"),
            (effective, None, 5, "rural"),
        ]
        cursor = await conn.execute(
            "SELECT p.id, p.customer_id, p.address, p.so_khau, p.revision > 1, p.search_text"
            " FROM service_points p WHERE p.code = 'KH1' AND p.tenant_id = %s",
            (tenant_id,),
        )
        row = await cursor.fetchone()
        assert row is not None
        point_id, customer_id, address, so_khau, revised, found_by = row
        assert (address, so_khau, revised) == ("Số 14 Ngõ 5 Tô Hiệu", 5, True)
        assert "chu ho" in found_by
        assert "so 14" in found_by
        history = await audit.history(conn, tenant_id, customer_id=customer_id)
    point_entry = next(e for e in history if e.entity == "service_point")
    assert (point_entry.action, point_entry.entity_id) == ("import_update", point_id)
    assert point_entry.before is not None
    assert point_entry.after is not None
    assert point_entry.before["so_khau"] == 4
    assert point_entry.after["so_khau"] == 5
    assert point_entry.after["address"] == "Số 14 Ngõ 5 Tô Hiệu"
    assert point_entry.after["effective_date"] == "2025-06-01"
    assert set(point_entry.after) == {
        "address", "so_khau", "collector_staff_id", "area_id", "area_group", "effective_date",
    }  # fmt: skip
    customer_entry = next(e for e in history if e.entity == "customer")
    assert customer_entry.action == "import_update"
    assert customer_entry.before == {"name": "Nguyễn Văn Ánh"}
    assert customer_entry.after == {"name": "Nguyễn Văn Ánh (chủ hộ)"}


async def test_a_future_change_waits_for_its_day(pool: Pool) -> None:
    async with pool.connection() as conn:
        tenant_id = await company(conn)
        await run(conn, tenant_id, csv_bytes([household("KH1")]))
        later = dt.date(2025, 9, 1)
        report = await run(
            conn, tenant_id, csv_bytes([household("KH1", so_khau="2")]), effective=later
        )
        assert counts(report) == (0, 1, 0, 0)
        cursor = await conn.execute(
            "SELECT p.so_khau, array_agg(t.so_khau ORDER BY t.valid_from),"
            " array_agg(t.valid_from ORDER BY t.valid_from) FROM service_points p"
            " JOIN service_point_terms t ON t.service_point_id = p.id"
            " WHERE p.tenant_id = %s GROUP BY p.so_khau",
            (tenant_id,),
        )
        assert await cursor.fetchone() == (4, [4, 2], [dt.date(2025, 1, 1), later])
        # The same file again, from the same day: unchanged, however today's columns read.
        again = await run(
            conn, tenant_id, csv_bytes([household("KH1", so_khau="2")]), effective=later
        )
        assert counts(again) == (0, 0, 1, 0)


async def test_a_change_keeps_a_later_scheduled_change(pool: Pool) -> None:
    """``customers.terms`` semantics: a later row that set the field itself keeps its value;
    one that carried the old value takes the new one."""
    async with pool.connection() as conn:
        tenant_id = await company(conn)
        await run(conn, tenant_id, csv_bytes([business("DN1")]))
        september = dt.date(2025, 9, 1)
        await run(
            conn,
            tenant_id,
            csv_bytes([business("DN1", volume_m3_per_month="3")]),
            effective=september,
        )
        july = dt.date(2025, 7, 1)
        await run(
            conn,
            tenant_id,
            csv_bytes(
                [business("DN1", volume_m3_per_month="2,75", contract_price_vnd="1.600.000")]
            ),
            effective=july,
        )
        cursor = await conn.execute(
            "SELECT valid_from, valid_to, volume_m3_per_month, contract_price_vnd"
            " FROM service_point_terms WHERE tenant_id = %s ORDER BY valid_from",
            (tenant_id,),
        )
        assert await cursor.fetchall() == [
            (dt.date(2025, 3, 1), july, Decimal("2.500"), 1_500_000),
            (july, september, Decimal("2.750"), 1_600_000),
            (september, None, Decimal("3.000"), 1_600_000),
        ]


# ---------------------------------------------------------------- formats and round trips


async def test_xlsx_and_csv_give_the_same_book(pool: Pool) -> None:
    rows = [household("KH1"), business("DN1"), household("KH2", so_khau=None, status="tạm ngừng")]
    typed = [
        household("KH1", lat=20.9713, lon=105.7788, so_khau=4, valid_from=dt.datetime(2025, 1, 1)),
        business(
            "DN1",
            lat=21.0312,
            lon=105.8476,
            accuracy_m=8,
            volume_m3_per_month=2.5,
            weight_kg_per_month=1250.75,
            contract_price_vnd=1_500_000,
            tax_code=101234567,  # Excel dropped the leading zero
            valid_from=dt.date(2025, 3, 1),
        ),
        household("KH2", so_khau=None, status="tạm ngừng"),
    ]
    async with pool.connection() as conn:
        from_csv = await company(conn)
        from_xlsx = await company(conn)
        assert counts(await run(conn, from_csv, csv_bytes(rows))) == (3, 0, 0, 0)
        assert counts(await run(conn, from_xlsx, xlsx_bytes(typed))) == (3, 0, 0, 0)
        a, b = await exported(conn, from_csv), await exported(conn, from_xlsx)
    assert a == b
    assert a[0]["tax_code"] == "0101234567"
    assert a[0]["weight_kg_per_month"] == Decimal("1250.75")


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
async def test_an_export_imports_back_unchanged(pool: Pool, fmt: str) -> None:
    rows = [
        household("KH1"),
        household("KH2", name='=HYPERLINK("http://x")', address="+84 phố Huế", ward="-"),
        household("KH3", phones="+84 912 345 678", email="@nh@x.vn", so_khau=None),
        business("DN1"),
        business("DN1", point_code="DN1-2", lat="21.031", lon="105.8477", accuracy_m="1,5"),
        business("DN2", volume_m3_per_month="1,2340", weight_kg_per_month="0.5"),
    ]
    async with pool.connection() as conn:
        tenant_id = await company(conn)
        first = await run(conn, tenant_id, csv_bytes(rows))
        assert counts(first) == (5, 0, 0, 1)  # "@nh@x.vn" is no e-mail address
        book = await exported(conn, tenant_id)
        data = export_bytes(book, fmt)
        again = await run(conn, tenant_id, data)
        assert counts(again) == (0, 0, 5, 0), again.rejections
        assert await exported(conn, tenant_id) == book
    names = {r["customer_code"]: r["name"] for r in book}
    assert names["KH2"] == '=HYPERLINK("http://x")'
    if fmt == "csv":
        text = data.decode("utf-8-sig")
        assert text.startswith(",".join(c.header for c in COLUMNS))
        assert "'=HYPERLINK" in text
        assert "'+84 phố Huế" in text
        assert ",'-," in text
        assert "Công ty TNHH Phở Hà" in text


async def test_vietnamese_headers_any_way_written_and_decomposed_text(pool: Pool) -> None:
    bare = {
        "customer_code": "ma kh",
        "name": "TEN KHACH HANG",
        "kind": "loai",
        "lat": "latitude",
        "lon": "Kinh Do",
        "so_khau": "so khau",
        "address": "address",
    }
    decomposed = unicodedata.normalize("NFD", "Đặng Thị Hồng Nhung")
    rows = [
        {
            "customer_code": "KH1",
            "name": decomposed,
            "kind": "Hộ gia đình",
            "lat": "21,0",
            "lon": "105,8",
            "so_khau": "3",
            "address": unicodedata.normalize("NFD", "Ngõ 5 Đường Láng"),
        }
    ]
    async with pool.connection() as conn:
        tenant_id = await company(conn)
        report = await run(conn, tenant_id, csv_bytes(rows, headers=bare))
        assert counts(report) == (1, 0, 0, 0)
        (row,) = await exported(conn, tenant_id)
    assert row["name"] == "Đặng Thị Hồng Nhung"
    assert row["address"] == "Ngõ 5 Đường Láng"
    assert row["kind"] == "household"
    assert row["customer_class"] == "household"


async def test_progress_is_reported_while_reading_and_writing(pool: Pool) -> None:
    seen: list[tuple[int, int]] = []
    rows = [household(f"KH{n}") for n in range(5000)]
    async with pool.connection() as conn:
        tenant_id = await company(conn)
        report = await run(conn, tenant_id, csv_bytes(rows), progress=seen)
    assert report.rows_created == 5000
    assert len(seen) >= 5
    assert seen[-1][0] == seen[-1][1]
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(seen))


# ---------------------------------------------------------------- hostile cells


_HOSTILE: st.SearchStrategy[Cell] = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
    st.sampled_from(
        [
            "=cmd|' /C calc'!A0",
            "+1+1",
            "-1",
            "@SUM(A1)",
            "\x00",
            "KH\x001",
            "1e308",
            "1e-320",
            "9" * 40,
            "NaN",
            "inf",
            "1.234",
            "1,5",
            "31/02/2025",
            "hộ gia đình",
            "",
            " ",
            "'",
        ]
    ),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.dates(),
    st.datetimes(),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    cells=st.lists(
        st.dictionaries(st.sampled_from([c.key for c in COLUMNS]), _HOSTILE, max_size=12),
        min_size=1,
        max_size=6,
    )
)
async def test_hostile_cells_only_reject_rows(pool: Pool, cells: list[dict[str, Cell]]) -> None:
    keys = ("customer_code", "name", "kind", "lat", "lon", *sorted({k for c in cells for k in c}))
    columns = tuple(dict.fromkeys(keys))
    base = household("KH1") | {"lat": "21.0", "lon": "105.8"}
    rows = [
        SheetRow(n + 2, {k: cell.get(k, base.get(k) if k in base else None) for k in columns})
        for n, cell in enumerate(cells)
    ]
    sheet = Sheet("csv", columns, (), 1, len(rows), iter(rows))
    async with pool.connection() as conn:
        tenant_id = await company(conn)
        report = await import_rows(
            conn,
            tenant_id,
            ACTOR,
            sheet,
            filename="hostile.csv",
            file_sha256="0" * 64,
            fmt="csv",
            now=NOW,
            effective_date=TODAY,
        )
        assert report.rows_total == len(rows)
        assert report.rows_created + report.rows_unchanged + report.rows_rejected == len(rows)
        for r in report.rejections:
            assert "\x00" not in (r.value or "")
        await conn.rollback()


async def test_hostile_csv_bytes_never_break_the_import(pool: Pool) -> None:
    header = ",".join(c.header for c in COLUMNS).encode()
    bodies = [
        b"\x00\x01\x02,\xff\xfe,=cmd|' /C calc'!A0\n",
        b'"unterminated,quote\n',
        b"KH1," + b"9" * 5000 + b",\n",
        "KH1,KH1,A,hộ gia đình,,,,,,,,21.0,105.8\r\nKH2;;;\n".encode(),
    ]
    for body in bodies:
        async with pool.connection() as conn:
            tenant_id = await company(conn)
            try:
                report = await run(conn, tenant_id, header + b"\n" + body)
            except ValueError:  # a SpreadsheetError: the file as a whole is unreadable
                continue
            assert report.rows_total >= report.rows_rejected


# ---------------------------------------------------------------- the terms semantics


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=300),
            st.integers(min_value=1, max_value=4),
            st.sampled_from(["active", "suspended"]),
            st.sampled_from([("QT", "urban"), ("DL", "rural")]),
        ),
        min_size=1,
        max_size=4,
    )
)
async def test_bulk_terms_changes_match_change_terms_from(
    pool: Pool, steps: list[tuple[int, int, str, tuple[str, str]]]
) -> None:
    """The importer writes terms in bulk; point KH1 changed by files and KH2 changed by
    ``customers.terms.change_terms_from`` end with the same terms and the same columns."""
    start = dt.date(2025, 1, 1)
    async with pool.connection() as conn:
        tenant_id = await company(conn)
        await run(conn, tenant_id, csv_bytes([household("KH1"), household("KH2")]))
        cursor = await conn.execute(
            "SELECT id FROM service_points WHERE tenant_id = %s AND code = 'KH2'", (tenant_id,)
        )
        found = await cursor.fetchone()
        assert found is not None
        other = int(found[0])
        for offset, so_khau, status, (area, group) in steps:
            effective = start + dt.timedelta(days=offset)
            data = csv_bytes(
                [household("KH1", so_khau=str(so_khau), status=status, area_code=area)]
            )
            await run(conn, tenant_id, data, effective=effective)
            await terms.change_terms_from(
                conn,
                tenant_id,
                other,
                effective,
                {"so_khau": so_khau, "status": status, "area_group": group},
                today=TODAY,
            )
        cursor = await conn.execute(
            "SELECT p.code, t.valid_from, t.valid_to, t.status, t.so_khau, t.area_group"
            " FROM service_point_terms t JOIN service_points p ON p.id = t.service_point_id"
            " WHERE p.tenant_id = %s ORDER BY t.valid_from",
            (tenant_id,),
        )
        rows = await cursor.fetchall()
        cursor = await conn.execute(
            "SELECT code, so_khau, status, status_from FROM service_points WHERE tenant_id = %s",
            (tenant_id,),
        )
        points = {r[0]: r[1:] for r in await cursor.fetchall()}
        await conn.rollback()
    assert [r[1:] for r in rows if r[0] == "KH1"] == [r[1:] for r in rows if r[0] == "KH2"]
    assert points["KH1"] == points["KH2"]


# ---------------------------------------------------------------- chunks and search text


async def test_chunk_boundaries_do_not_change_the_outcome(
    pool: Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A customer whose rows fall in several written chunks counts the same as in one."""
    shop = [business("DN1", point_code=f"DN1-{n}", lat=f"21.03{n}") for n in range(5)]
    rows = [household("KH1"), *shop, household("KH2")]
    renamed = [household("KH1"), *(r | {"name": "Phở Hà Mới"} for r in shop), household("KH2")]
    results = []
    for chunk_rows in (2, importer.CHUNK_ROWS):
        monkeypatch.setattr(importer, "CHUNK_ROWS", chunk_rows)
        async with pool.connection() as conn:
            tenant_id = await company(conn)
            first = await run(conn, tenant_id, csv_bytes(rows))
            second = await run(conn, tenant_id, csv_bytes(renamed))
            book = [r | {"valid_from": None} for r in await exported(conn, tenant_id)]
            results.append((counts(first), counts(second), book))
    assert results[0] == results[1]
    assert results[0][1] == (0, 5, 2, 0)


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(st.text(max_size=12), min_size=7, max_size=7),
    phones=st.lists(st.text(alphabet="0123456789 .+-", max_size=12), max_size=3),
)
def test_the_importers_search_text_is_the_books(parts: list[str], phones: list[str]) -> None:
    customer, point, name, address, street, ward, tax = parts
    values: dict[str, Any] = {
        "customer_code": customer,
        "point_code": point if point else customer,
        "name": name,
        "phones": phones,
        "address": address,
        "street": street,
        "ward": ward,
        "tax_code": tax or None,
    }
    assert importer.point_search_text(**values) == search_text(**values)


async def test_a_file_without_every_searched_column_keeps_the_search_text_right(
    pool: Pool,
) -> None:
    async with pool.connection() as conn:
        tenant_id = await company(conn)
        await run(conn, tenant_id, csv_bytes([business("DN1")]))
        moved = {"customer_code": "DN1", "point_code": "DN1-1", "address": "7 Hàng Đào"}
        report = await run(conn, tenant_id, csv_bytes([moved]))
        renamed = {"customer_code": "DN1", "point_code": "DN1-2", "name": "Phở Hà 2"}
        renamed |= {"kind": "doanh nghiệp", "lat": "21.04", "lon": "105.85"}
        added = await run(conn, tenant_id, csv_bytes([renamed]))
        cursor = await conn.execute(
            "SELECT p.code, p.search_text FROM service_points p WHERE p.tenant_id = %s"
            " ORDER BY p.code",
            (tenant_id,),
        )
        texts: dict[str, str] = dict(await cursor.fetchall())
        cursor = await conn.execute(
            "SELECT p.code, c.code, p.code, c.name, c.phones, p.address, p.street, p.ward,"
            " c.tax_code FROM service_points p JOIN customers c ON c.id = p.customer_id"
            " WHERE p.tenant_id = %s",
            (tenant_id,),
        )
        expected = {
            code: search_text(
                customer_code=c, point_code=p, name=n, phones=ph, address=a, street=s,
                ward=w, tax_code=t,
            )
            for code, c, p, n, ph, a, s, w, t in await cursor.fetchall()
        }  # fmt: skip
    assert counts(report) == (0, 1, 0, 0)
    assert counts(added) == (1, 0, 0, 0)  # a new point (its customer renamed)
    assert texts == expected
    assert "7 hang dao" in texts["DN1-1"]
    assert "pho ha 2" in texts["DN1-1"]  # the other point follows its customer's new name
    assert "0101234567" in texts["DN1-2"]  # the stored tax code, though the file had none


# ---------------------------------------------------------------- the command line


def test_the_command_line_imports_reports_and_exports(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SANITRACK_DATABASE_URL", database_url)
    slug = f"t-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO tenants (slug, name) VALUES (%s, 'CLI') RETURNING id", (slug,)
        ).fetchone()
        assert row is not None
        conn.execute(
            "INSERT INTO staff (tenant_id, code, full_name, role)"
            " VALUES (%s, 'C1', 'Trần Văn Gom', 'collector')",
            (row[0],),
        )
        conn.execute(
            "INSERT INTO areas (tenant_id, code, name) VALUES (%s, 'QT', 'Quang Trung'),"
            " (%s, 'HG', 'Hàng Gai')",
            (row[0], row[0]),
        )
    book = tmp_path / "sổ khách hàng.csv"
    rows = [household(f"KH{n}") for n in range(40)] + [household("KH99", lat="x")]
    book.write_bytes(csv_bytes(rows))
    report = tmp_path / "rejections.csv"
    args = ["customers-import", str(book), "--tenant", slug, "--report", str(report)]
    assert cli.main([*args, "--effective-date", "2025-06-10", "--actor", "Chị Lan"]) == 0
    out = capsys.readouterr().out
    assert "100 %" in out
    assert "created          40" in out
    assert "rejected          1" in out
    assert "42: Vĩ độ = 'x': not a number" in out
    assert "42,Vĩ độ,x,not a number" in report.read_text(encoding="utf-8-sig")
    for suffix in ("csv", "xlsx"):
        exported_file = tmp_path / f"export.{suffix}"
        assert cli.main(["customers-export", str(exported_file), "--tenant", slug]) == 0
        assert f"wrote 40 service points of '{slug}'" in capsys.readouterr().out
        assert cli.main(["customers-import", str(exported_file), "--tenant", slug]) == 0
        assert "unchanged        40" in capsys.readouterr().out
    assert cli.main(["customers-import", str(tmp_path / "none.csv"), "--tenant", slug]) == 1
    assert cli.main(["customers-export", str(tmp_path / "book.ods"), "--tenant", slug]) == 2


async def test_points_without_terms_or_with_terms_starting_later(pool: Pool) -> None:
    """A point stored before terms were kept gets its first terms from the import; a point
    whose terms start after the effective date changes from their start."""
    async with pool.connection() as conn:
        tenant_id = await company(conn)
        cursor = await conn.execute(
            "INSERT INTO customers (tenant_id, code, name, kind) VALUES"
            " (%s, 'OLD', 'Nguyễn Văn Ánh', 'household') RETURNING id",
            (tenant_id,),
        )
        row = await cursor.fetchone()
        assert row is not None
        await conn.execute(
            "INSERT INTO service_points (tenant_id, customer_id, code, lat, lon, so_khau)"
            " VALUES (%s, %s, 'OLD', 20.9713, 105.7788, 3)",
            (tenant_id, row[0]),
        )
        later = household("NEW", valid_from="01/09/2025")
        await run(conn, tenant_id, csv_bytes([later]))
        report = await run(
            conn,
            tenant_id,
            csv_bytes([household("OLD", so_khau="5"), later | {"so_khau": "6"}]),
            effective=TODAY,
        )
        cursor = await conn.execute(
            "SELECT p.code, p.so_khau, t.valid_from, t.valid_to, t.so_khau, t.area_group"
            " FROM service_points p JOIN service_point_terms t ON t.service_point_id = p.id"
            " WHERE p.tenant_id = %s ORDER BY p.code, t.valid_from",
            (tenant_id,),
        )
        rows = await cursor.fetchall()
    assert counts(report) == (0, 2, 0, 0)
    assert rows == [
        ("NEW", 6, dt.date(2025, 9, 1), None, 6, "urban"),
        ("OLD", 5, dt.date(2025, 1, 1), None, 5, "urban"),
    ]
