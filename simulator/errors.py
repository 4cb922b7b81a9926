"""Errors of the simulator package, grouped by how the caller reacts."""


class SimulatorError(Exception):
    """Base of every simulator error."""


class NoPath(SimulatorError):
    """No drivable path joins two places (one-way streets or avoided streets cut them off)."""

    def __init__(self, start: object, end: object) -> None:
        super().__init__(f"no drivable path from {start!r} to {end!r}")
        self.start = start
        self.end = end
