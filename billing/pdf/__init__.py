"""Printed documents: invoices as Circular 78/2021 shows an e-invoice on paper, and the
collector's book. Pure rendering: documents in, PDF bytes out (no database)."""

from billing.pdf.book import BookRow, CollectorBook, render_collector_book
from billing.pdf.formats import money
from billing.pdf.invoice import DRAFT_MARK, reference_text, title_of
from billing.pdf.render import InvoiceRenderer, RenderedPdf, render_invoice, render_invoices
from billing.pdf.sheet import FONT_FILES

__all__ = [
    "DRAFT_MARK",
    "FONT_FILES",
    "BookRow",
    "CollectorBook",
    "InvoiceRenderer",
    "RenderedPdf",
    "money",
    "reference_text",
    "render_collector_book",
    "render_invoice",
    "render_invoices",
    "title_of",
]
