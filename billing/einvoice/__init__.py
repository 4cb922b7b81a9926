"""E-invoices at the tax authority (issue 8): an issued invoice as the authority's XML, the
provider that signs it and has it coded (``EInvoiceProvider``, over HTTP or the local fake),
and the idempotent, retried sender that takes it from issued to sent to coded."""

from billing.einvoice.document import invoice_xml
from billing.einvoice.fake import FakeEInvoiceProvider, FakeSubmission, ReceivedRequest
from billing.einvoice.provider import (
    EInvoiceProvider,
    HttpEInvoiceProvider,
    ProviderAnswer,
    ProviderError,
    ProviderRejected,
    ProviderState,
    ProviderUnavailable,
    Submission,
    idempotency_key,
)
from billing.einvoice.sender import (
    SendReport,
    queue_for_sending,
    requeue,
    run_einvoice_sender,
    send_due,
)
from billing.einvoice.settings import EInvoiceSettings
from billing.einvoice.settlement import Attempt, Outcome, SendingState, retry_delay_s, settle

__all__ = [
    "Attempt",
    "EInvoiceProvider",
    "EInvoiceSettings",
    "FakeEInvoiceProvider",
    "FakeSubmission",
    "HttpEInvoiceProvider",
    "Outcome",
    "ProviderAnswer",
    "ProviderError",
    "ProviderRejected",
    "ProviderState",
    "ProviderUnavailable",
    "ReceivedRequest",
    "SendReport",
    "SendingState",
    "Submission",
    "idempotency_key",
    "invoice_xml",
    "queue_for_sending",
    "requeue",
    "retry_delay_s",
    "run_einvoice_sender",
    "send_due",
    "settle",
]
