"""Errors of the alerts package, grouped by how the caller reacts."""


class AlertsError(Exception):
    """Base of every alerts error."""


class NotFound(AlertsError):
    """The alert, visit or staff member does not exist in this tenant (another tenant's looks
    the same as a missing one)."""


class Conflict(AlertsError):
    """The change does not fit the alert's state: it is resolved already."""


class InvalidValue(AlertsError):
    """A signal, visit or argument is malformed; the message names the field and the value."""


class Overflowed(AlertsError):
    """A bus subscriber fell more than its bound behind and was dropped."""

    def __init__(self, max_queued: int) -> None:
        super().__init__(f"the subscriber fell {max_queued} items behind and was dropped")
        self.max_queued = max_queued
