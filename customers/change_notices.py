"""Telling the customer what became of a change request: the texts (in Vietnamese) of the
notice when it is applied or rejected, put in the notifications outbox by email and SMS
in the caller's transaction."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection

import notifications
from customers.change_models import ChangeRequest
from customers.models import Customer

log = logging.getLogger(__name__)

_LABELS = {
    "status": "trạng thái dịch vụ",
    "customer_class": "đối tượng tính giá",
    "so_khau": "số khẩu",
    "volume_m3_per_month": "khối lượng rác (m³/tháng)",
    "weight_kg_per_month": "khối lượng rác (kg/tháng)",
    "container_lifts_per_month": "số lần nâng thùng mỗi tháng",
    "contract_price_vnd": "giá hợp đồng",
    "services": "dịch vụ",
    "exemption_pct": "mức miễn giảm",
    "exemption_reason": "lý do miễn giảm",
    "address": "địa chỉ",
    "street": "đường phố",
    "ward": "phường/xã",
    "area_id": "địa bàn",
    "category": "loại hình",
    "collector_staff_id": "nhân viên thu gom",
    "cashier_staff_id": "nhân viên thu tiền",
    "route_code": "tuyến thu gom",
    "lat": "vị trí",
    "lon": "vị trí",
    "accuracy_m": "vị trí",
    "name": "tên khách hàng",
    "kind": "loại khách hàng",
    "phones": "số điện thoại",
    "email": "email",
    "tax_code": "mã số thuế",
    "contact_name": "người liên hệ",
    "billing_address": "địa chỉ nhận hóa đơn",
    "billing_period": "kỳ thanh toán",
    "billing_mode": "hình thức thanh toán",
}
_VALUE_LABELS = {
    "active": "đang sử dụng",
    "suspended": "tạm ngừng",
    "terminated": "chấm dứt",
    "monthly": "hàng tháng",
    "quarterly": "hàng quý",
    "yearly": "hàng năm",
    "prepaid": "trả trước",
    "postpaid": "trả sau",
    "household": "hộ gia đình",
    "business_household": "hộ kinh doanh",
    "business": "doanh nghiệp",
    "agency": "cơ quan, đơn vị",
    "collection": "thu gom rác sinh hoạt",
    "recycling": "tái chế",
    "hazardous": "chất thải nguy hại",
    "extra": "thu gom theo yêu cầu",
    "container_rental": "thuê thùng",
}
# Told with their values; the rest (staff, areas, positions, codes) by name only.
_SHOWN = {
    "status", "so_khau", "volume_m3_per_month", "weight_kg_per_month",
    "container_lifts_per_month", "contract_price_vnd", "services", "exemption_pct", "address",
    "street", "ward", "name", "kind", "phones", "email", "tax_code", "contact_name",
    "billing_address", "billing_period", "billing_mode",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Notice:
    dedupe_key: str
    subject: str
    body: str  # the email
    sms: str


def _shown(field: str, value: Any) -> str:
    if value is None or value == [] or value == "":
        return "(trống)"
    if isinstance(value, list):
        return ", ".join(_shown(field, v) for v in value)
    if field == "contract_price_vnd":
        return f"{int(value):,}".replace(",", ".") + " đồng"
    if field == "exemption_pct":
        return f"{value}%"
    if field in ("volume_m3_per_month", "weight_kg_per_month"):
        return f"{Decimal(str(value)).normalize():f}".replace(".", ",")
    return _VALUE_LABELS.get(str(value), str(value))


def _what(request: ChangeRequest) -> str:
    labels = dict.fromkeys(_LABELS.get(f, f) for f in request.diff)
    return ", ".join(labels)


def _details(request: ChangeRequest) -> list[str]:
    return [
        f"- {_LABELS[f][0].upper()}{_LABELS[f][1:]}: {_shown(f, c['from'])} → {_shown(f, c['to'])}"
        for f, c in request.diff.items()
        if f in _SHOWN
    ]


def applied_notice(request: ChangeRequest, customer: Customer) -> Notice:
    what = _what(request)
    day = request.effective_date.strftime("%d/%m/%Y")
    subject = f"Yêu cầu thay đổi {what} đã được áp dụng"
    lines = [
        f"Kính gửi {customer.name} (mã khách hàng {customer.code}),",
        "",
        f"Yêu cầu thay đổi {what} (mã yêu cầu {request.id}) đã được áp dụng từ ngày {day}.",
        *_details(request),
        "",
        "Các khoản phí từ ngày này được tính theo thông tin mới.",
        "Trân trọng.",
    ]
    sms = (
        f"Yêu cầu thay đổi {what} (mã {request.id}) của khách hàng {customer.code}"
        f" đã được áp dụng từ ngày {day}."
    )
    return Notice(f"change_request:{request.id}:applied", subject, "\n".join(lines), sms)


def rejected_notice(request: ChangeRequest, customer: Customer, note: str) -> Notice:
    what = _what(request)
    subject = f"Yêu cầu thay đổi {what} không được chấp thuận"
    reason = f" Lý do: {note.strip()}" if note.strip() else ""
    lines = [
        f"Kính gửi {customer.name} (mã khách hàng {customer.code}),",
        "",
        f"Yêu cầu thay đổi {what} (mã yêu cầu {request.id}) không được chấp thuận.{reason}",
        "Thông tin của quý khách được giữ nguyên.",
        "",
        "Trân trọng.",
    ]
    sms = (
        f"Yêu cầu thay đổi {what} (mã {request.id}) của khách hàng {customer.code}"
        f" không được chấp thuận.{reason}"
    )
    return Notice(f"change_request:{request.id}:rejected", subject, "\n".join(lines), sms)


async def notify_customer(
    conn: AsyncConnection[Any],
    tenant_id: int,
    customer: Customer,
    notice: Notice,
    at: dt.datetime,
) -> None:
    """Email when the customer has an address, SMS to its first phone when it has one;
    a contact the outbox refuses (an old malformed number) is logged and skipped."""
    recipients = []
    if customer.email:
        recipients.append((notifications.Channel.EMAIL, customer.email, notice.body))
    if customer.phones:
        recipients.append((notifications.Channel.SMS, customer.phones[0], notice.sms))
    for channel, recipient, body in recipients:
        try:
            await notifications.enqueue(
                conn,
                tenant_id,
                customer_id=customer.id,
                channel=channel,
                recipient=recipient,
                subject=notice.subject[:300],
                body=body[:10_000],
                dedupe_key=notice.dedupe_key,
                now=at,
            )
        except notifications.InvalidNotification as error:
            log.warning("customer %s not told by %s: %s", customer.id, channel, error)
