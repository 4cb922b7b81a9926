"""Invoices to PDF: one file, each invoice on its own page or pages.

``InvoiceRenderer`` takes documents a chunk at a time, so that a batch of 10,000 is loaded
and drawn in pieces (and its progress shown) into one file; ``render_invoices`` and
``render_invoice`` are the one-call forms.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from billing.errors import InvalidValue
from billing.invoice_models import InvoiceDocument
from billing.pdf.invoice import draw_invoice
from billing.pdf.sheet import Sheet


@dataclass(frozen=True, slots=True)
class RenderedPdf:
    pdf: bytes
    pages: int
    first_pages: tuple[int, ...] = ()  # each document's first page (1-based), in order


class InvoiceRenderer:
    """Invoices drawn one after another into one PDF; ``finish`` once, at the end."""

    def __init__(self, created_at: dt.datetime | None = None):
        self._sheet = Sheet("P", "Hóa đơn", created_at)
        self._first_pages: list[int] = []

    @property
    def count(self) -> int:
        return len(self._first_pages)

    def add(self, documents: Iterable[InvoiceDocument]) -> None:
        for document in documents:
            self._first_pages.append(self._sheet.pages + 1)
            draw_invoice(self._sheet, document)

    def finish(self) -> RenderedPdf:
        if not self._first_pages:
            self.close()
            raise InvalidValue("documents: nothing to render")
        return RenderedPdf(self._sheet.output(), self._sheet.pages, tuple(self._first_pages))

    def close(self) -> None:
        """Give up (or after ``finish``: nothing left to do)."""
        self._sheet.close()


def render_invoices(
    documents: Sequence[InvoiceDocument], created_at: dt.datetime | None = None
) -> RenderedPdf:
    """One PDF of ``documents`` in order. ``created_at``: the file's creation date (now
    when not given); the same documents and date give the same bytes."""
    renderer = InvoiceRenderer(created_at)
    renderer.add(documents)
    return renderer.finish()


def render_invoice(document: InvoiceDocument, created_at: dt.datetime | None = None) -> bytes:
    return render_invoices([document], created_at).pdf
