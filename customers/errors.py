class CustomersError(Exception):
    """Base of customer errors."""


class NotFound(CustomersError):
    """The customer or service point does not exist in this tenant."""


class InvalidValue(CustomersError):
    """A value is out of its allowed range; the message names the field."""


class Conflict(CustomersError):
    """The change clashes with what is stored (a code in use, a stale revision, a request
    decided already); the message names the field."""
