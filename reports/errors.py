"""Errors of the reports package, grouped by how the caller reacts."""


class ReportsError(Exception):
    """Base of every reports error."""


class NotFound(ReportsError):
    """The vehicle or route run does not exist in this tenant (another tenant's looks the
    same as a missing one)."""


class InvalidValue(ReportsError):
    """An argument is malformed; the message names it and its value."""
