"""amqtt plugins that apply broker.access: device logins and the topic ACL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amqtt.contexts import Action as AmqttAction
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from broker.access import Action, BrokerAccess


class DeviceAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]
    @dataclass
    class Config:
        access: Any = None  # a BrokerAccess; Any because amqtt type-checks plugin config

    async def authenticate(self, *, session: Session) -> bool | None:
        access: BrokerAccess = self.config.access
        return await access.authenticate(session.username, session.password)


class DeviceTopicPlugin(BaseTopicPlugin):  # type: ignore[misc]
    @dataclass
    class Config:
        access: Any = None

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: AmqttAction | None = None,
    ) -> bool | None:
        if session is None or topic is None or action is None:
            return False
        access: BrokerAccess = self.config.access
        return access.may(Action(str(action)), session.username, topic)
