"""Blocks flowed onto pages: every block's height is known before anything is drawn, so a
document knows its page count ("Trang 1/3") before its first page is drawn.

A block is never split. A page that starts with a table row repeats the table's header.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from billing.pdf.sheet import Sheet

Draw = Callable[[Sheet, float], None]  # draws with its top at y (mm)


@dataclass(frozen=True, slots=True)
class Block:
    height_mm: float
    draw: Draw
    row: bool = False  # a table row: a page it starts repeats the table header


@dataclass(frozen=True, slots=True)
class Placed:
    block: Block
    y_mm: float


@dataclass(frozen=True, slots=True)
class Frame:
    """Where blocks go on a page: from ``first_top_mm`` on the first page (under nothing),
    from ``next_top_mm`` on the others (under their running head), to ``bottom_mm``."""

    first_top_mm: float
    next_top_mm: float
    bottom_mm: float


def paginate(
    blocks: Sequence[Block], frame: Frame, table_header: Block | None
) -> list[list[Placed]]:
    """The blocks placed on pages, in order; at least one page."""
    pages: list[list[Placed]] = [[]]
    y = frame.first_top_mm
    for block in blocks:
        if pages[-1] and y + block.height_mm > frame.bottom_mm:
            pages.append([])
            y = frame.next_top_mm
            if block.row and table_header is not None:
                pages[-1].append(Placed(table_header, y))
                y += table_header.height_mm
        pages[-1].append(Placed(block, y))
        y += block.height_mm
    return pages


def draw_pages(
    sheet: Sheet,
    pages: list[list[Placed]],
    chrome: Callable[[Sheet, int, int], None],
) -> None:
    """Each page added to ``sheet``: ``chrome(sheet, page_index, page_count)`` first (the
    watermark, running head and footer), then its blocks."""
    for index, placed in enumerate(pages):
        sheet.add_page()
        chrome(sheet, index, len(pages))
        for item in placed:
            item.block.draw(sheet, item.y_mm)
