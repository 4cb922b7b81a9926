"""An amount in Vietnamese words, as an invoice prints it ("Số tiền viết bằng chữ"):
130000 → "Một trăm ba mươi nghìn đồng"."""

from __future__ import annotations

_DIGITS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")
_GROUPS = ("", "nghìn", "triệu")
_BILLION = 1_000_000_000


def _group(n: int, full: bool) -> list[str]:
    """Three digits; ``full``: read a zero hundreds ("không trăm linh năm"), as every group
    after the first is read."""
    hundreds, tens, units = n // 100, n // 10 % 10, n % 10
    words: list[str] = []
    if full or hundreds:
        words += [_DIGITS[hundreds], "trăm"]
    if tens == 0:
        if units and words:
            words.append("linh")
    elif tens == 1:
        words.append("mười")
    else:
        words += [_DIGITS[tens], "mươi"]
    if units == 1 and tens >= 2:
        words.append("mốt")
    elif units == 5 and tens >= 1:
        words.append("lăm")
    elif units:
        words.append(_DIGITS[units])
    return words


def _below_billion(n: int, leading: bool) -> list[str]:
    groups = [n // 1_000_000, n // 1_000 % 1_000, n % 1_000]
    words: list[str] = []
    for index, value in enumerate(groups):
        if value == 0:
            continue
        words += _group(value, full=bool(words) or not leading)
        name = _GROUPS[2 - index]
        if name:
            words.append(name)
    return words


def _words(n: int, leading: bool = True) -> list[str]:
    if n < _BILLION:
        return _below_billion(n, leading)
    high, low = divmod(n, _BILLION)
    words = [*_words(high, leading), "tỷ"]
    return words + (_below_billion(low, leading=False) if low else [])


def number_in_words(n: int) -> str:
    """A whole number in lower-case Vietnamese words; negative numbers start with "âm"."""
    if n == 0:
        return _DIGITS[0]
    words = _words(abs(n))
    return " ".join((["âm"] if n < 0 else []) + words)


def amount_in_words(amount_vnd: int) -> str:
    """Whole VND in words, capitalised, ending in "đồng"."""
    text = number_in_words(amount_vnd) + " đồng"
    return text[0].upper() + text[1:]
