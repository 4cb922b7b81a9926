"""Settings of the e-invoice provider and of the sender: ``Settings.einvoice``
(``SANITRACK_EINVOICE__BASE_URL=...``), defined with the other settings."""

from sanitrack.settings import EInvoiceSettings

__all__ = ["EInvoiceSettings"]
