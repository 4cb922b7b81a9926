"""The invoice as the tax authority's XML: the structure of Decision 1450, the Vietnamese
text exactly as issued, totals, determinism, and a correction's references."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import xml.etree.ElementTree as ET

import pytest

from billing.amount_words import amount_in_words
from billing.einvoice import invoice_xml
from billing.errors import InvalidValue
from billing.invoice_models import InvoiceDocument, InvoiceKind, InvoiceOrigin, InvoiceReference
from billing.invoices import load_documents
from storage import Pool
from tests.billing.invoice_support import SELLER, new_tenant, seed_invoices


async def documents(pool: Pool, count: int = 1, **options: object) -> list[InvoiceDocument]:
    async with pool.connection() as conn:
        tenant_id = await new_tenant(conn)
        ids = await seed_invoices(conn, tenant_id, count, **options)  # type: ignore[arg-type]
        return await load_documents(conn, tenant_id, ids)


def parse(xml: bytes) -> ET.Element:
    assert xml.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    return ET.fromstring(xml)


async def test_an_issued_invoice_in_the_authoritys_structure(pool: Pool) -> None:
    (document,) = await documents(pool)
    root = parse(invoice_xml(document, provider_tax_code="0100109106"))
    assert root.tag == "HDon"
    general = root.find("DLHDon/TTChung")
    assert general is not None
    assert [child.tag for child in general] == [
        "PBan", "THDon", "KHMSHDon", "KHHDon", "SHDon", "NLap", "DVTTe", "TGia", "HTTToan",
        "MSTTCGP",
    ]  # fmt: skip
    assert {child.tag: child.text for child in general} == {
        "PBan": "2.1.0",
        "THDon": "HÓA ĐƠN GIÁ TRỊ GIA TĂNG",
        "KHMSHDon": "1",
        "KHHDon": "C26TAA",
        "SHDon": "1",
        "NLap": "2026-07-02",
        "DVTTe": "VND",
        "TGia": "1",
        "HTTToan": "TM/CK",
        "MSTTCGP": "0100109106",
    }
    seller = root.find("DLHDon/NDHDon/NBan")
    assert seller is not None
    assert {child.tag: child.text for child in seller} == {
        "Ten": "Công ty TNHH MTV Môi trường Đô thị Hà Nội",
        "MST": "0100106779",
        "DChi": "Số 18 Nguyễn Chí Thanh, phường Ngọc Khánh, quận Ba Đình, Hà Nội",
        "SDThoai": "024 3835 2536",
        "STKNHang": "1020 1000 0012 345",
        "TNHang": "Ngân hàng TMCP Công thương Việt Nam",
    }
    buyer = root.find("DLHDon/NDHDon/NMua")
    assert buyer is not None
    assert buyer.findtext("Ten") == "Nguyễn Văn Ánh"
    assert buyer.findtext("DChi") == "Số 1 ngõ 1 phố Hàng Bạc, phường Hoàn Kiếm"
    assert buyer.findtext("MKHang") == document.invoice.buyer_code
    assert buyer.find("MST") is None  # a household has no tax code
    lines = root.findall("DLHDon/NDHDon/DSHHDVu/HHDVu")
    assert [{child.tag: child.text for child in line} for line in lines] == [
        {
            "TChat": "1",
            "STT": str(n),
            "THHDVu": "Dịch vụ thu gom, vận chuyển rác thải sinh hoạt tháng 6/2026",
            "DVTinh": "tháng",
            "SLuong": "1",
            "DGia": amount,
            "ThTien": amount,
            "TSuat": "8%",
        }
        for n, amount in [(1, "36000"), (2, "130000")]
    ]


async def test_totals_are_the_documents_per_rate_and_in_words(pool: Pool) -> None:
    (document,) = await documents(pool)
    totals = parse(invoice_xml(document)).find("DLHDon/NDHDon/TToan")
    assert totals is not None
    rates = totals.findall("THTTLTSuat/LTSuat")
    assert [(r.findtext("TSuat"), r.findtext("ThTien"), r.findtext("TThue")) for r in rates] == [
        ("8%", "166000", "13280")
    ]
    invoice = document.invoice
    assert (invoice.subtotal_vnd, invoice.vat_vnd, invoice.total_vnd) == (166_000, 13_280, 179_280)
    assert totals.findtext("TgTCThue") == "166000"
    assert totals.findtext("TgTThue") == "13280"
    assert totals.findtext("TgTTTBSo") == "179280"
    assert totals.findtext("TgTTTBChu") == amount_in_words(179_280)
    assert totals.findtext("TgTTTBChu") == "Một trăm bảy mươi chín nghìn hai trăm tám mươi đồng"


async def test_a_line_not_subject_to_vat_says_kct(pool: Pool) -> None:
    (document,) = await documents(pool, vat_rate="KCT", amounts_vnd=(50_000,))
    root = parse(invoice_xml(document))
    assert root.findtext("DLHDon/NDHDon/DSHHDVu/HHDVu/TSuat") == "KCT"
    assert root.findtext("DLHDon/NDHDon/TToan/THTTLTSuat/LTSuat/TSuat") == "KCT"
    assert root.findtext("DLHDon/NDHDon/TToan/TgTThue") == "0"
    assert root.find("DLHDon/TTChung/MSTTCGP") is not None  # empty when not configured


async def test_the_same_document_gives_the_same_bytes(pool: Pool) -> None:
    (document,) = await documents(pool)
    first = invoice_xml(document)
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT tenant_id FROM invoices WHERE id = %s", (document.invoice.id,)
        )
        row = await cursor.fetchone()
        assert row is not None
        (again,) = await load_documents(conn, row[0], [document.invoice.id])
    assert invoice_xml(again) == first
    assert hashlib.sha256(invoice_xml(again)).hexdigest() == hashlib.sha256(first).hexdigest()
    # and a different invoice does not
    changed = dataclasses.replace(
        document, invoice=dataclasses.replace(document.invoice, buyer_name="Trần Thị Bưởi")
    )
    assert invoice_xml(changed) != first


async def test_an_adjustment_refers_to_what_it_adjusts(pool: Pool) -> None:
    (document,) = await documents(pool)
    original = InvoiceReference(
        referenced_id=document.invoice.id,
        relation="adjusts",
        template="1",
        symbol="C26TAA",
        number=1,
        issue_date=dt.date(2026, 7, 2),
    )
    second = dataclasses.replace(original, referenced_id=0, number=2)
    adjustment = dataclasses.replace(
        document,
        invoice=dataclasses.replace(
            document.invoice,
            kind=InvoiceKind.ADJUSTMENT,
            origin=InvoiceOrigin.CORRECTION,
            number=7,
        ),
        references=[original, second],
    )
    root = parse(invoice_xml(adjustment))
    related = root.findall("DLHDon/TTChung/TTHDLQuan")
    assert [{child.tag: child.text for child in r} for r in related] == [
        {
            "TCHDon": "2",
            "LHDCLQuan": "1",
            "KHMSHDCLQuan": "1",
            "KHHDCLQuan": "C26TAA",
            "SHDCLQuan": str(number),
            "NLHDCLQuan": "2026-07-02",
        }
        for number in (1, 2)
    ]
    replacement = dataclasses.replace(
        adjustment,
        invoice=dataclasses.replace(adjustment.invoice, kind=InvoiceKind.REPLACEMENT),
        references=[dataclasses.replace(original, relation="replaces")],
    )
    replaced = parse(invoice_xml(replacement)).findall("DLHDon/TTChung/TTHDLQuan")
    assert [r.findtext("TCHDon") for r in replaced] == ["1"]
    # an original carries no reference block
    assert parse(invoice_xml(document)).find("DLHDon/TTChung/TTHDLQuan") is None


async def test_a_draft_has_no_xml(pool: Pool) -> None:
    (draft,) = await documents(pool, status="draft")
    with pytest.raises(InvalidValue, match="draft"):
        invoice_xml(draft)
    assert draft.seller == SELLER  # a draft's seller is the current one
