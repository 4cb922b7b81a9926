"""The append-only audit log: who changed what, before and after, chained by SHA-256 so
that an edited or deleted entry shows.

Every package that changes customers, service points, tariffs, assignments or invoices
writes here in the transaction of the change (``record`` / ``record_many``).
"""

from audit.log import (
    Actor,
    AuditEntry,
    AuditError,
    ChainBreak,
    Change,
    history,
    record,
    record_many,
    verify_chain,
)

__all__ = [
    "Actor",
    "AuditEntry",
    "AuditError",
    "ChainBreak",
    "Change",
    "history",
    "record",
    "record_many",
    "verify_chain",
]
