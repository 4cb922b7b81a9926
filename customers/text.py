"""Vietnamese text folded for search: "Nguyễn Văn Ánh" and "nguyen van anh" meet.

Folding drops diacritics (NFD, then the combining marks), maps đ/Đ to d (a letter of its
own, not a mark), lowers the case and keeps one space between words. Phone numbers are
kept as bare digits, so "0912 345 678" is found by "0912345678" and by "345678".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

_NOT_WORD = re.compile(r"[^0-9a-z]+")
_DIGITS = re.compile(r"[^0-9]+")
_D = str.maketrans({"đ": "d", "Đ": "d"})


def fold(text: str) -> str:
    """``text`` without diacritics or case, words separated by one space."""
    decomposed = unicodedata.normalize("NFD", text.translate(_D))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NOT_WORD.sub(" ", bare.lower()).strip()


def phone_digits(phone: str) -> str:
    return _DIGITS.sub("", phone)


def search_text(
    *,
    customer_code: str,
    point_code: str,
    name: str,
    phones: Iterable[str],
    address: str,
    street: str = "",
    ward: str = "",
    tax_code: str | None = None,
) -> str:
    """What a service point is found by, folded, in one line: the street and the ward only
    when the address does not hold them already."""
    folded_address = fold(address)
    folded_street = fold(street) if street else ""
    folded_ward = fold(ward) if ward else ""
    parts = [
        fold(point_code),
        fold(customer_code) if customer_code != point_code else "",
        fold(name),
        " ".join(phone_digits(p) for p in phones),
        folded_address,
        folded_street if street and folded_street not in folded_address else "",
        folded_ward if ward and folded_ward not in folded_address else "",
        tax_code or "",
    ]
    return " ".join(p for p in parts if p)


def search_terms(query: str) -> list[str]:
    """A search box's words, folded; each must occur in what a point is found by."""
    return [word for word in fold(query).split(" ") if word]


def is_phone_digits(word: str) -> bool:
    """Four or more digits: part of a phone number, matched anywhere ("345678" finds
    0912 345 678)."""
    return word.isdigit() and len(word) >= 4


def word_query(words: list[str]) -> str | None:
    """A ``to_tsquery('simple', ...)`` text: every word whole, the last one as a prefix
    (the search box's last word may be half typed); None when no word is left.

    Folded words hold only ``[0-9a-z]``, so they cannot carry tsquery operators.
    """
    if not words:
        return None
    return " & ".join([*words[:-1], f"{words[-1]}:*"])
