"""The customer book as a spreadsheet over HTTP: export, import from the page, roles and
companies kept apart."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

import pytest

from accounts import Role
from storage import Pool
from tests.api.conftest import ApiUnderTest, api_under_test
from tests.api.test_customers_api import call

BOOK = (
    "Mã KH,Tên khách hàng,Loại,Điện thoại,Địa chỉ,Vĩ độ,Kinh độ,Số khẩu\r\n"
    "KH-A1,Nguyễn Văn Ánh,hộ gia đình,0912 345 678,Số 3 Lê Lợi,20.97,105.77,4\r\n"
    "KH-A2,Trần Thị Bình,hộ gia đình,0988 111 222,Số 5 Lê Lợi,,105.77,3\r\n"
)


@pytest.fixture
async def api(pool: Pool) -> AsyncIterator[ApiUnderTest]:
    async with api_under_test(pool) as under_test:
        yield under_test


async def test_an_imported_file_keeps_its_good_rows_and_names_the_bad(api: ApiUnderTest) -> None:
    answer = await call(
        api, "POST", "/customers/import", params={"filename": "so-khach-hang.csv"},
        content=BOOK.encode("utf-8-sig"), headers={"content-type": "text/csv"},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert (report["rows_created"], report["rows_rejected"]) == (1, 1)
    assert report["rejections"][0]["row"] == 3
    assert report["rejections"][0]["field"] == "lat"
    again = await call(
        api, "POST", "/customers/import", params={"filename": "so-khach-hang.csv"},
        content=BOOK.encode("utf-8-sig"),
    )  # fmt: skip
    assert (again.json()["rows_created"], again.json()["rows_unchanged"]) == (0, 1)
    # The other company's book has none of it, and its export neither.
    theirs = await call(api, "GET", "/customers", world=api.b, params={"q": "nguyen van anh"})
    assert theirs.status_code == 200
    assert "KH-A1" not in {p["code"] for p in theirs.json()}
    exported = await call(
        api, "GET", "/customers/export", role=Role.DISPATCHER, params={"format": "csv"}
    )
    assert exported.status_code == 200
    assert exported.headers["content-disposition"].startswith("attachment;")
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert rows[0][0] == "Mã KH"
    assert "KH-A1" in {row[0] for row in rows[1:]}
    their_export = await call(
        api, "GET", "/customers/export", world=api.b, params={"format": "csv"}
    )
    assert "KH-A1" not in their_export.content.decode("utf-8-sig")


async def test_only_the_office_imports_and_names_must_say_csv_or_xlsx(api: ApiUnderTest) -> None:
    refused = await call(
        api, "POST", "/customers/import", role=Role.DISPATCHER,
        params={"filename": "book.csv"}, content=BOOK.encode(),
    )  # fmt: skip
    assert refused.status_code == 403
    for filename in ("book.txt", "../etc/book.csv"):
        bad = await call(
            api, "POST", "/customers/import", params={"filename": filename}, content=BOOK.encode()
        )
        assert bad.status_code == 422
        assert bad.json()["error"]["field"] == "filename"
    empty = await call(api, "POST", "/customers/import", params={"filename": "book.csv"})
    assert (empty.status_code, empty.json()["error"]["field"]) == (422, "body")
    xlsx_named_csv = await call(
        api, "POST", "/customers/import", params={"filename": "book.xlsx"}, content=BOOK.encode()
    )
    assert xlsx_named_csv.status_code == 422


async def test_an_xlsx_export_imports_back_unchanged(api: ApiUnderTest) -> None:
    await call(
        api, "POST", "/customers/import", params={"filename": "b.csv"}, content=BOOK.encode()
    )
    exported = await call(api, "GET", "/customers/export", params={"format": "xlsx"})
    assert exported.content[:2] == b"PK"  # a zip: an XLSX workbook
    back = await call(
        api, "POST", "/customers/import", params={"filename": "b.xlsx"}, content=exported.content
    )
    report = back.json()
    assert report["rows_rejected"] == 0, report["rejections"][:3]
    assert report["rows_created"] == report["rows_updated"] == 0
