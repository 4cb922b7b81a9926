class PlanningError(Exception):
    """Base of planning errors."""


class NotFound(PlanningError):
    """The route run does not exist in this tenant."""


class Conflict(PlanningError):
    """A route run with this name exists for the vehicle and date."""


class InvalidValue(PlanningError):
    """A value is out of its allowed range; the message names the field."""


class NoFeasiblePlan(PlanningError):
    """The engine found no plan keeping every rule (e.g. the fleet is too small and jobs may
    not be left out); the message says what could not be fitted."""


class Unsupported(PlanningError):
    """The engine cannot model this problem; the message says what."""
