"""Ruled tables made of blocks: a header (repeated on every page the table runs onto) and
rows whose cells wrap their text; a cell may span several columns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

from billing.pdf.flow import Block
from billing.pdf.sheet import HEADER_FILL, Align, Sheet, line_height

PADDING_MM = 1.0


@dataclass(frozen=True, slots=True)
class Column:
    title: str
    width_mm: float
    align: Align = "L"


@dataclass(frozen=True, slots=True)
class Cell:
    text: str
    span: int = 1  # columns covered
    align: Align | None = None  # the first column's alignment unless given


class Table:
    def __init__(self, x_mm: float, columns: Sequence[Column], size_pt: float):
        self.x_mm = x_mm
        self.columns = list(columns)
        self.size_pt = size_pt
        self.edges = list(accumulate((c.width_mm for c in self.columns), initial=x_mm))
        self.width_mm = self.edges[-1] - x_mm

    def header(self, sheet: Sheet, numbers: Sequence[str] = ()) -> Block:
        """The column titles, bold on a tinted ground; under them, when given, the columns'
        numbers and formulas ("6 = 4 x 5")."""
        size = self.size_pt
        titles = [
            sheet.wrap(c.title, c.width_mm - 2 * PADDING_MM, size, bold=True) for c in self.columns
        ]
        title_h = max(len(t) for t in titles) * line_height(size) + 2 * PADDING_MM
        numbers_h = line_height(size - 1) + PADDING_MM if numbers else 0.0

        def draw(sheet: Sheet, y: float) -> None:
            sheet.box(self.x_mm, y, self.width_mm, title_h + numbers_h, fill=HEADER_FILL)
            for index, (column, lines) in enumerate(zip(self.columns, titles, strict=True)):
                left = self.edges[index]
                top = y + (title_h - len(lines) * line_height(size)) / 2
                sheet.lines(left, top, lines, size, bold=True, align="C", width=column.width_mm)
                if numbers:
                    sheet.text(
                        left,
                        y + title_h,
                        numbers[index],
                        size - 1,
                        align="C",
                        width=column.width_mm,
                    )
            if numbers:
                sheet.line(self.x_mm, y + title_h, self.edges[-1], y + title_h)
            self._verticals(sheet, y, title_h + numbers_h, [1] * len(self.columns))

        return Block(title_h + numbers_h, draw)

    def row(
        self,
        sheet: Sheet,
        cells: Sequence[str | Cell],
        *,
        bold: bool = False,
        row: bool = True,
        min_height_mm: float = 0.0,
    ) -> Block:
        """One row, at least ``min_height_mm`` high (room to write by hand); ``row=False``
        for the rows under the table (totals), which a page does not start with the
        table's header."""
        size = self.size_pt
        laid: list[tuple[float, float, list[str], Align]] = []  # left, width, lines, align
        column = 0
        for cell in cells:
            if isinstance(cell, str):
                cell = Cell(cell)
            left, right = self.edges[column], self.edges[column + cell.span]
            lines = sheet.wrap(cell.text, right - left - 2 * PADDING_MM, size, bold)
            laid.append((left, right - left, lines, cell.align or self.columns[column].align))
            column += cell.span
        if column != len(self.columns):
            raise ValueError(f"cells: {column} columns covered, the table has {len(self.columns)}")
        height = max(len(lines) for _, _, lines, _ in laid) * line_height(size) + 2 * PADDING_MM
        height = max(height, min_height_mm)
        spans = [1 if isinstance(c, str) else c.span for c in cells]

        def draw(sheet: Sheet, y: float) -> None:
            for left, width, lines, align in laid:
                sheet.lines(
                    left + PADDING_MM,
                    y + PADDING_MM,
                    lines,
                    size,
                    bold=bold,
                    align=align,
                    width=width - 2 * PADDING_MM,
                )
            sheet.line(self.x_mm, y, self.edges[-1], y)
            sheet.line(self.x_mm, y + height, self.edges[-1], y + height)
            self._verticals(sheet, y, height, spans)

        return Block(height, draw, row=row)

    def _verticals(self, sheet: Sheet, y: float, height: float, spans: Sequence[int]) -> None:
        for edge in [0, *accumulate(spans)]:
            x = self.edges[edge]
            sheet.line(x, y, x, y + height)
