"""One PDF being written: fonts that carry every Vietnamese letter, text placed by the top
of its line, words wrapped to a width, and rules. Everything is in millimetres.

fpdf2 is driven through ``text()`` (one text object per line) rather than its cells: it is
several times faster, and the wrapping here is what decides page breaks before a page is
drawn (see ``flow``).
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from pathlib import Path
from typing import Literal

from fpdf import FPDF
from fpdf.fonts import TTFFont

FONTS_DIR = Path(__file__).parent / "fonts"
# DejaVu Sans Condensed: every letter of Vietnamese (precomposed, all five tones, both
# cases) and narrow enough for an eight-column table. Embedded as a subset by fpdf2.
FONT_FILES = {
    False: FONTS_DIR / "DejaVuSansCondensed.ttf",
    True: FONTS_DIR / "DejaVuSansCondensed-Bold.ttf",
}
FAMILY = "dejavu-condensed"
PT_MM = 25.4 / 72
LINE_FACTOR = 1.3  # a line's height, in font sizes
ADVANCE_MM = PT_MM / 1000  # glyph advances are in thousandths of the font size

Align = Literal["L", "C", "R"]
Colour = tuple[int, int, int]
BLACK: Colour = (0, 0, 0)
GREY: Colour = (110, 110, 110)
RED: Colour = (200, 0, 0)
FAINT_RED: Colour = (245, 205, 205)
HEADER_FILL: Colour = (232, 236, 242)


def _advances(pdf: FPDF, bold: bool) -> dict[int, float]:
    """The font's advance per code point (a missing one: the font's default width)."""
    font = pdf.fonts[FAMILY + ("B" if bold else "")]
    assert isinstance(font, TTFFont)
    return font.cw


def line_height(size_pt: float) -> float:
    return size_pt * PT_MM * LINE_FACTOR


class Sheet:
    """A PDF of A4 pages, portrait or landscape."""

    def __init__(self, orientation: Literal["P", "L"], title: str, created_at: dt.datetime | None):
        pdf = FPDF(orientation=orientation, unit="mm", format="A4")
        pdf.set_auto_page_break(False)
        pdf.set_margins(0, 0, 0)
        for bold, path in FONT_FILES.items():
            pdf.add_font(FAMILY, "B" if bold else "", str(path))
        pdf.set_title(title)
        pdf.set_lang("vi-VN")
        pdf.set_creator("Sanitrack")
        pdf.set_producer("Sanitrack")
        if created_at is not None:
            pdf.set_creation_date(created_at)
        self.pdf = pdf
        self.width_mm: float = pdf.w
        self.height_mm: float = pdf.h
        self._font: tuple[bool, float] | None = None
        self._colour: Colour = BLACK
        self._advances = {bold: _advances(pdf, bold) for bold in FONT_FILES}

    @property
    def pages(self) -> int:
        return self.pdf.page_no()

    def add_page(self) -> None:
        self.pdf.add_page()
        self._font = None  # fpdf2 sets the font again on each page

    def output(self) -> bytes:
        """The finished file (fpdf2 closes the font files)."""
        return bytes(self.pdf.output())

    def close(self) -> None:
        """Close the font files of a sheet given up before its output (closing twice is
        harmless)."""
        for font in self.pdf.fonts.values():
            if isinstance(font, TTFFont):
                font.close()

    def __enter__(self) -> Sheet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---------------------------------------------------------------- text

    def _use(self, size_pt: float, bold: bool, colour: Colour) -> None:
        if self._font != (bold, size_pt):
            self.pdf.set_font(FAMILY, "B" if bold else "", size_pt)
            self._font = (bold, size_pt)
        if colour != self._colour:
            self.pdf.set_text_color(*colour)
            self._colour = colour

    def width(self, text: str, size_pt: float, bold: bool = False) -> float:
        """The printed width of ``text`` (no kerning: fpdf2 places glyphs by advance)."""
        advances = self._advances[bold]
        return sum([advances[ord(c)] for c in text]) * size_pt * ADVANCE_MM

    def text(
        self,
        x: float,
        y: float,
        text: str,
        size_pt: float = 9,
        *,
        bold: bool = False,
        align: Align = "L",
        width: float = 0.0,
        colour: Colour = BLACK,
    ) -> None:
        """One line with the top of its line box at ``y``; aligned within ``width``."""
        if not text:
            return
        text = unicodedata.normalize("NFC", text)
        if align != "L":
            free = width - self.width(text, size_pt, bold)
            x += free if align == "R" else free / 2
        self._use(size_pt, bold, colour)
        baseline = y + size_pt * PT_MM * 1.05
        self.pdf.text(x, baseline, text)

    def lines(
        self,
        x: float,
        y: float,
        lines: list[str],
        size_pt: float = 9,
        *,
        bold: bool = False,
        align: Align = "L",
        width: float = 0.0,
        colour: Colour = BLACK,
    ) -> float:
        """Wrapped lines one under another; the height they take."""
        step = line_height(size_pt)
        for index, line in enumerate(lines):
            self.text(
                x,
                y + index * step,
                line,
                size_pt,
                bold=bold,
                align=align,
                width=width,
                colour=colour,
            )
        return step * len(lines)

    def wrap(self, text: str, width: float, size_pt: float, bold: bool = False) -> list[str]:
        """``text`` broken into lines no wider than ``width``: at spaces, and inside a word
        only when the word alone is wider. Never an empty list."""
        text = unicodedata.normalize("NFC", text)
        lines: list[str] = []
        space = self.width(" ", size_pt, bold)
        for paragraph in text.split("\n"):
            current, current_width = "", 0.0
            for word in paragraph.split():
                word_width = self.width(word, size_pt, bold)
                if current and current_width + space + word_width <= width:
                    current, current_width = (
                        current + " " + word,
                        current_width + space + word_width,
                    )
                    continue
                if current:
                    lines.append(current)
                while word_width > width and len(word) > 1:
                    head = self._longest_prefix(word, width, size_pt, bold)
                    lines.append(head)
                    word = word[len(head) :]
                    word_width = self.width(word, size_pt, bold)
                current, current_width = word, word_width
            lines.append(current)
        return lines

    def _longest_prefix(self, word: str, width: float, size_pt: float, bold: bool) -> str:
        end = len(word) - 1
        while end > 1 and self.width(word[:end], size_pt, bold) > width:
            end -= 1
        return word[:end]

    # ---------------------------------------------------------------- rules and marks

    def line(self, x1: float, y1: float, x2: float, y2: float, width: float = 0.2) -> None:
        self.pdf.set_line_width(width)
        self.pdf.line(x1, y1, x2, y2)

    def box(self, x: float, y: float, w: float, h: float, fill: Colour | None = None) -> None:
        self.pdf.set_line_width(0.2)
        if fill is not None:
            self.pdf.set_fill_color(*fill)
        self.pdf.rect(x, y, w, h, style="DF" if fill is not None else "D")

    def watermark(self, text: str, size_pt: float) -> None:
        """Big faint diagonal text across the page, drawn first so the content lies on it."""
        x_centre, y_centre = self.width_mm / 2, self.height_mm / 2
        with self.pdf.rotation(35, x_centre, y_centre):
            self.text(
                x_centre - self.width(text, size_pt, True) / 2,
                y_centre - size_pt * PT_MM / 2,
                text,
                size_pt,
                bold=True,
                colour=FAINT_RED,
            )
