"""MQTT subscriber, decoders, validation, filters, per-device ordering, batch writer."""

from ingest.decode import Decoded, Limits, Reason, Rejection, decode
from ingest.fix import DeviceFix, Fix, FixSource
from ingest.metrics import IngestMetrics
from ingest.mqtt import MqttEndpoint
from ingest.service import IngestService, IngestStatus
from ingest.topics import SUBSCRIPTIONS, Route, TopicKind, device_topic, route

__all__ = [
    "SUBSCRIPTIONS",
    "Decoded",
    "DeviceFix",
    "Fix",
    "FixSource",
    "IngestMetrics",
    "IngestService",
    "IngestStatus",
    "Limits",
    "MqttEndpoint",
    "Reason",
    "Rejection",
    "Route",
    "TopicKind",
    "decode",
    "device_topic",
    "route",
]
