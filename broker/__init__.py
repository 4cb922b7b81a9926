"""The MQTT broker side: device logins, the topic ACL, the embedded amqtt broker."""

from broker.access import Action, BrokerAccess, ServiceAccount, device_may
from broker.embedded import RunningBroker, embedded_broker, free_port
from broker.mosquitto import acl_file, password_file

__all__ = [
    "Action",
    "BrokerAccess",
    "RunningBroker",
    "ServiceAccount",
    "acl_file",
    "device_may",
    "embedded_broker",
    "free_port",
    "password_file",
]
