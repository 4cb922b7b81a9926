"""The amqtt plugin that checks device logins against broker.access."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amqtt.plugins.base import BaseAuthPlugin
from amqtt.session import Session

from broker.access import BrokerAccess


class DeviceAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]
    @dataclass
    class Config:
        access: Any = None  # a BrokerAccess; Any because amqtt type-checks plugin config

    async def authenticate(self, *, session: Session) -> bool | None:
        access: BrokerAccess = self.config.access
        return await access.authenticate(session.username, session.password)
