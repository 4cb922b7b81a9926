"""Who may log in to the broker and which topics each login may use.

The same rules are applied by the embedded amqtt broker (plugins.py) and
written out as a Mosquitto password file and ACL for production (mosquitto.py).
"""

from __future__ import annotations

import asyncio
import enum
import hmac
from dataclasses import dataclass

import fleet
from sanitrack.clock import Clock
from storage import Pool


class Action(enum.StrEnum):
    PUBLISH = "publish"
    SUBSCRIBE = "subscribe"
    RECEIVE = "receive"


def device_may(action: Action, username: str, topic: str) -> bool:
    """The topic ACL of a device login ``{device}@{tenant}``."""
    identity = fleet.parse_username(username)
    if identity is None:
        return False
    tenant, device = identity
    own = f"sanitrack/{tenant}/dev/{device}/"
    if action is Action.PUBLISH:
        return topic in (own + "pos", own + "evt", own + "status") or (
            topic.startswith(f"owntracks/{username}/") and topic.count("/") == 2
        )
    return topic == own + "cmd"


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    username: str
    password: str


class BrokerAccess:
    """Checks logins against the devices table (cached briefly) and a service account."""

    def __init__(
        self, pool: Pool, service: ServiceAccount, clock: Clock, cache_s: float = 30.0
    ) -> None:
        self._pool = pool
        self._service = service
        self._clock = clock
        self._cache_s = cache_s
        self._cache: dict[str, tuple[float, fleet.DeviceLogin | None]] = {}
        self._lock = asyncio.Lock()

    def is_service(self, username: str | None) -> bool:
        return username == self._service.username

    async def authenticate(self, username: str | None, password: str | None) -> bool:
        if not username or password is None:
            return False
        if username == self._service.username:
            return hmac.compare_digest(password.encode(), self._service.password.encode())
        login = await self._login(username)
        return (
            login is not None
            and login.device.active
            and fleet.verify_secret(password, login.credential_hash)
        )

    def may(self, action: Action, username: str | None, topic: str) -> bool:
        if username is None:
            return False
        if username == self._service.username:
            return True
        return device_may(action, username, topic)

    def forget(self, username: str) -> None:
        """Drop a cached login (after rotation or revocation) so it applies at once."""
        self._cache.pop(username, None)

    async def _login(self, username: str) -> fleet.DeviceLogin | None:
        now = self._clock.monotonic()
        hit = self._cache.get(username)
        if hit is not None and hit[0] > now:
            return hit[1]
        async with self._pool.connection() as conn:
            login = await fleet.find_login(conn, username)
        if len(self._cache) > 200_000:
            self._cache.clear()
        self._cache[username] = (now + self._cache_s, login)
        return login
