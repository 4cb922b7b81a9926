class PlanningError(Exception):
    """Base of planning errors."""


class NotFound(PlanningError):
    """The route run does not exist in this tenant."""


class Conflict(PlanningError):
    """A route run with this name exists for the vehicle and date."""


class InvalidValue(PlanningError):
    """A value is out of its allowed range; the message names the field."""
