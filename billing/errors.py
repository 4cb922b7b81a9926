"""Errors of the billing package, grouped by how the caller reacts."""


class BillingError(Exception):
    """Base of every billing error."""


class NotFound(BillingError):
    """The tariff version or charge does not exist in this tenant (another tenant's looks the
    same as a missing one)."""


class Conflict(BillingError):
    """The change clashes with what is stored: an overlapping tariff version, a code in use."""


class InvalidValue(BillingError):
    """A value is out of its allowed range; the message starts with the field."""
