class FleetError(Exception):
    """Base of fleet errors."""


class NotFound(FleetError):
    """The tenant, vehicle, staff member or device does not exist (in this tenant)."""


class Conflict(FleetError):
    """An object with the same code or slug exists already."""


class InvalidValue(FleetError):
    """A value is out of its allowed range; the message names the field."""
