"""Login rate limiting per client address, in process.

The account lock-out (accounts.service) is stored and holds across processes; this limit
stops one address from trying many accounts, each below its lock-out threshold.
"""

from __future__ import annotations

from sanitrack.clock import Clock


class LoginThrottle:
    """A token bucket per client: ``burst`` attempts at once, refilled at ``per_minute``."""

    def __init__(self, clock: Clock, per_minute: float = 10.0, burst: int = 10) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("LoginThrottle: per_minute must be > 0 and burst >= 1")
        self._clock = clock
        self._rate_per_s = per_minute / 60.0
        self._burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}

    def retry_after_s(self, client: str) -> float:
        """0 and one attempt spent when ``client`` may try now; else seconds to wait."""
        now = self._clock.monotonic()
        tokens, last = self._buckets.get(client, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate_per_s)
        if tokens < 1.0:
            self._buckets[client] = (tokens, now)
            return (1.0 - tokens) / self._rate_per_s
        if len(self._buckets) > 100_000:  # bounded memory under a spray of addresses
            self._buckets.clear()
        self._buckets[client] = (tokens - 1.0, now)
        return 0.0
