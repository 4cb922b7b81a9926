"""An invoice as the tax authority's XML (Decision 1450/QĐ-TCT, the format of Circular 78):

    HDon
      DLHDon                  the invoice's data
        TTChung               general: version, title, template, symbol, number, date...
          TTHDLQuan           per invoice an adjustment or replacement refers to
        NDHDon                content
          NBan, NMua          seller, buyer
          DSHHDVu/HHDVu       one per line
          TToan               totals, per VAT rate and in all, and in words

The signature list (DSCKS) and the authority's code (MCCQT) are not ours to write: the
provider signs the document with the seller's certificate and the authority adds its code.
The same document always gives the same bytes, so their SHA-256 identifies what was sent.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal

from billing.amount_words import amount_in_words
from billing.errors import InvalidValue
from billing.invoice_models import InvoiceDocument, InvoiceKind, InvoiceLine, InvoiceReference

FORMAT_VERSION = "2.1.0"  # PBan
TITLES = {  # THDon, by template (ký hiệu mẫu số)
    "1": "HÓA ĐƠN GIÁ TRỊ GIA TĂNG",
    "2": "HÓA ĐƠN BÁN HÀNG",
    "5": "HÓA ĐƠN KHÁC",
    "6": "PHIẾU XUẤT KHO KIÊM VẬN CHUYỂN NỘI BỘ",
}
# TCHDon: the nature of a correcting invoice.
NATURE = {InvoiceKind.REPLACEMENT: "1", InvoiceKind.ADJUSTMENT: "2"}
# LHDCLQuan: the referenced invoice is an e-invoice under Decree 123/2020.
RELATED_KIND_DECREE_123 = "1"
GOODS_OR_SERVICE = "1"  # TChat of an ordinary line


def tax_rate_text(vat_rate: str) -> str:
    """TSuat: "KCT" (not subject to VAT) or the percentage, "8%"."""
    return vat_rate if vat_rate == "KCT" else f"{vat_rate}%"


def invoice_xml(document: InvoiceDocument, *, provider_tax_code: str | None = None) -> bytes:
    """The issued invoice in the authority's XML, UTF-8. ``provider_tax_code``: the
    e-invoice provider's tax code (MSTTCGP). InvalidValue for a draft (it has no number)."""
    invoice = document.invoice
    if (
        invoice.template is None
        or invoice.symbol is None
        or invoice.number is None
        or invoice.issue_date is None
    ):
        raise InvalidValue(f"invoice_id: invoice {invoice.id} is a draft: it has no number yet")
    root = ET.Element("HDon")
    data = ET.SubElement(root, "DLHDon")

    general = ET.SubElement(data, "TTChung")
    _text(general, "PBan", FORMAT_VERSION)
    _text(general, "THDon", TITLES[invoice.template])
    _text(general, "KHMSHDon", invoice.template)
    _text(general, "KHHDon", invoice.symbol)
    _text(general, "SHDon", str(invoice.number))
    _text(general, "NLap", invoice.issue_date.isoformat())
    _text(general, "DVTTe", "VND")
    _text(general, "TGia", "1")
    _text(general, "HTTToan", invoice.payment_method)
    _text(general, "MSTTCGP", provider_tax_code or "")
    nature = NATURE.get(invoice.kind)
    if nature is not None:
        for reference in document.references:
            _reference(general, nature, reference)

    content = ET.SubElement(data, "NDHDon")
    seller = ET.SubElement(content, "NBan")
    _text(seller, "Ten", document.seller.legal_name)
    _text(seller, "MST", document.seller.tax_code)
    _text(seller, "DChi", document.seller.address)
    _optional(seller, "SDThoai", document.seller.phone)
    _optional(seller, "STKNHang", document.seller.bank_account)
    _optional(seller, "TNHang", document.seller.bank_name)
    buyer = ET.SubElement(content, "NMua")
    _text(buyer, "Ten", invoice.buyer_name)
    _optional(buyer, "MST", invoice.buyer_tax_code)
    _text(buyer, "DChi", invoice.buyer_address)
    _text(buyer, "MKHang", invoice.buyer_code)
    _optional(buyer, "DCTDTu", invoice.buyer_email)

    lines = ET.SubElement(content, "DSHHDVu")
    for line in document.lines:
        _line(lines, line)

    totals = ET.SubElement(content, "TToan")
    by_rate = ET.SubElement(totals, "THTTLTSuat")
    for group in document.vat_groups:
        rate = ET.SubElement(by_rate, "LTSuat")
        _text(rate, "TSuat", tax_rate_text(group.vat_rate))
        _text(rate, "ThTien", str(group.amount_vnd))
        _text(rate, "TThue", str(group.vat_vnd))
    _text(totals, "TgTCThue", str(invoice.subtotal_vnd))
    _text(totals, "TgTThue", str(invoice.vat_vnd))
    _text(totals, "TgTTTBSo", str(invoice.total_vnd))
    _text(totals, "TgTTTBChu", amount_in_words(invoice.total_vnd))
    # DSCKS (signatures) is left to the provider, which signs with the seller's certificate.
    xml: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return xml


def _reference(general: ET.Element, nature: str, reference: InvoiceReference) -> None:
    related = ET.SubElement(general, "TTHDLQuan")
    _text(related, "TCHDon", nature)
    _text(related, "LHDCLQuan", RELATED_KIND_DECREE_123)
    _text(related, "KHMSHDCLQuan", reference.template)
    _text(related, "KHHDCLQuan", reference.symbol)
    _text(related, "SHDCLQuan", str(reference.number))
    _text(related, "NLHDCLQuan", reference.issue_date.isoformat())


def _line(lines: ET.Element, line: InvoiceLine) -> None:
    item = ET.SubElement(lines, "HHDVu")
    _text(item, "TChat", GOODS_OR_SERVICE)
    _text(item, "STT", str(line.line_no))
    _text(item, "THHDVu", line.description)
    _optional(item, "DVTinh", line.unit)
    _text(item, "SLuong", _decimal(line.quantity))
    if line.unit_price_vnd is not None:
        _text(item, "DGia", _decimal(line.unit_price_vnd))
    _text(item, "ThTien", str(line.amount_vnd))
    _text(item, "TSuat", tax_rate_text(line.vat_rate))


def _decimal(value: Decimal) -> str:
    """Without trailing zeros or an exponent: 1.000 → "1", 1500.50 → "1500.5"."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def _text(parent: ET.Element, tag: str, text: str) -> None:
    ET.SubElement(parent, tag).text = text


def _optional(parent: ET.Element, tag: str, text: str | None) -> None:
    if text:
        _text(parent, tag, text)
