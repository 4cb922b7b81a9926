"""Errors of the device's MQTT client, `simulator.wire` and `simulator.mqtt_codec`,
grouped by how the caller reacts: refused, lost, back-pressure, or a broken stream."""

from __future__ import annotations

from simulator.errors import SimulatorError

_RETURN_CODES = {
    1: "unacceptable protocol version",
    2: "identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorised",
}


class WireError(SimulatorError):
    """Base of the MQTT client's errors; ``client_id`` names the session when there is one."""

    def __init__(self, message: str, client_id: str | None = None) -> None:
        super().__init__(f"{client_id}: {message}" if client_id else message)
        self.client_id = client_id


class ConnectRefused(WireError):
    """The broker answered CONNECT with a return code other than 0."""

    def __init__(self, client_id: str, return_code: int) -> None:
        meaning = _RETURN_CODES.get(return_code, "unknown return code")
        super().__init__(f"CONNACK return code {return_code} ({meaning})", client_id)
        self.return_code = return_code


class ConnectionLost(WireError):
    """The connection is gone or was never made; ``reason`` says how, ``__cause__`` why."""

    def __init__(self, client_id: str, reason: str) -> None:
        super().__init__(reason, client_id)
        self.reason = reason


class InflightFull(WireError):
    """Back-pressure: ``max_inflight`` QoS 1 publishes unacknowledged, or the socket's
    write buffer is full (``write_paused``). Nothing was written."""

    def __init__(
        self, client_id: str, in_flight: int, max_inflight: int, write_paused: bool
    ) -> None:
        why = "write buffer full" if write_paused else f"{in_flight}/{max_inflight} in flight"
        super().__init__(f"publish refused: {why}", client_id)
        self.in_flight = in_flight
        self.max_inflight = max_inflight
        self.write_paused = write_paused


class ProtocolError(WireError):
    """The broker sent bytes that are not MQTT 3.1.1 (the session drops the connection)."""
