"""The embedded amqtt broker, started in-process when SANITRACK_MQTT_URL is unset."""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

from amqtt.broker import Broker

from broker.access import BrokerAccess, ServiceAccount
from broker.plugins import DeviceAuthPlugin, DeviceTopicPlugin

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunningBroker:
    host: str
    port: int
    service: ServiceAccount

    @property
    def service_url(self) -> str:
        return f"mqtt://{self.service.username}:{self.service.password}@{self.host}:{self.port}"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def embedded_broker(
    access: BrokerAccess,
    service: ServiceAccount,
    host: str = "127.0.0.1",
    port: int = 1883,
) -> AsyncIterator[RunningBroker]:
    """Run amqtt with anonymous login off, device logins and the device topic ACL."""
    port = port or free_port(host)

    def plugin_path(cls: type) -> str:
        return f"{cls.__module__}.{cls.__qualname__}"

    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {
            plugin_path(DeviceAuthPlugin): {"access": access},
            plugin_path(DeviceTopicPlugin): {"access": access},
        },
    }
    # amqtt logs every packet at INFO; keep its own warnings.
    logging.getLogger("amqtt").setLevel(logging.WARNING)
    broker = Broker(config)
    await broker.start()
    log.info("embedded MQTT broker on %s:%d", host, port)
    try:
        yield RunningBroker(host, port, service)
    finally:
        await broker.shutdown()
