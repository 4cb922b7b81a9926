"""Numbers, dates and rates as Vietnamese documents print them: 1.234.567 (dots between
thousands, a comma before decimals), "Ngày 02 tháng 07 năm 2026", 8%."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

# Vietnam keeps no summer time: a printed time of day or date is at UTC+7.
VIETNAM = dt.timezone(dt.timedelta(hours=7), "ICT")


def grouped(whole: int) -> str:
    """A whole number with dots between thousands: -1.234.567."""
    text = f"{abs(whole):,}".replace(",", ".")
    return "-" + text if whole < 0 else text


def money(amount_vnd: int) -> str:
    return grouped(amount_vnd)


def decimal_text(value: Decimal | None) -> str:
    """A quantity or unit price: 1.500 is "1,5", 36000.00 is "36.000"; None prints empty."""
    if value is None:
        return ""
    sign = "-" if value < 0 else ""
    value = abs(value)
    whole = int(value)
    fraction = value - whole
    text = grouped(whole)
    if fraction:
        digits = format(fraction.normalize(), "f").split(".")[1]
        text += "," + digits
    return sign + text


def vat_rate_text(vat_rate: str) -> str:
    """'KCT' (not subject to VAT) prints as it is; a rate as a percentage."""
    return vat_rate if vat_rate == "KCT" else f"{vat_rate}%"


def date_words(day: dt.date | None) -> str:
    """The date line of an invoice; blanks for a draft, which has no issue date yet."""
    if day is None:
        return "Ngày ..... tháng ..... năm ........."
    return f"Ngày {day.day:02d} tháng {day.month:02d} năm {day.year}"


def date_short(day: dt.date) -> str:
    return f"{day.day:02d}/{day.month:02d}/{day.year}"


def local_date(at: dt.datetime) -> dt.date:
    return at.astimezone(VIETNAM).date()


def period_text(start: dt.date, end_exclusive: dt.date) -> str:
    """A service period: "01/06/2026 – 30/06/2026" (the stored end is exclusive)."""
    return f"{date_short(start)} – {date_short(end_exclusive - dt.timedelta(days=1))}"
