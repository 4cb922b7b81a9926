"""MQTT subscriber, decoders, validation, filters, per-device ordering, batch writer."""

from ingest.decode import Decoded, Limits, Reason, Rejection, decode
from ingest.events import decode_event
from ingest.fix import DeviceEvent, DeviceFix, DeviceItem, EventKind, Fix, FixSource
from ingest.metrics import IngestMetrics
from ingest.mqtt import MqttEndpoint
from ingest.service import FixConsumer, IngestService, IngestStatus, ItemConsumer
from ingest.topics import SUBSCRIPTIONS, Route, TopicKind, device_topic, route

__all__ = [
    "SUBSCRIPTIONS",
    "Decoded",
    "DeviceEvent",
    "DeviceFix",
    "DeviceItem",
    "EventKind",
    "Fix",
    "FixConsumer",
    "FixSource",
    "IngestMetrics",
    "IngestService",
    "IngestStatus",
    "ItemConsumer",
    "Limits",
    "MqttEndpoint",
    "Reason",
    "Rejection",
    "Route",
    "TopicKind",
    "decode",
    "decode_event",
    "device_topic",
    "route",
]
