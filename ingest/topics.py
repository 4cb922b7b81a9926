"""Topic routing (ARCHITECTURE §3)."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from fleet import parse_username

_SLUG = r"[a-z0-9-]{1,64}"
_DEVICE_TOPIC = re.compile(rf"^sanitrack/({_SLUG})/dev/({_SLUG})/(pos|evt|status)$")
_OWNTRACKS_TOPIC = re.compile(r"^owntracks/([^/]+)/([^/]+)$")

# What the ingest service subscribes to (QoS 1); status is not read yet.
SUBSCRIPTIONS = ("sanitrack/+/dev/+/pos", "sanitrack/+/dev/+/evt", "owntracks/+/+")


class TopicKind(enum.StrEnum):
    POSITIONS = "pos"
    EVENT = "evt"
    STATUS = "status"
    OWNTRACKS = "owntracks"


@dataclass(frozen=True, slots=True)
class Route:
    kind: TopicKind
    tenant: str
    device: str


def route(topic: str) -> Route | None:
    """Which device a topic belongs to, or None for a topic we do not accept."""
    match = _DEVICE_TOPIC.match(topic)
    if match:
        return Route(TopicKind(match[3]), match[1], match[2])
    match = _OWNTRACKS_TOPIC.match(topic)
    if match:
        # OwnTracks publishes to owntracks/{username}/{deviceid}; the username
        # ({device}@{tenant}) names the registered device.
        identity = parse_username(match[1])
        if identity:
            return Route(TopicKind.OWNTRACKS, identity[0], identity[1])
    return None


def device_topic(tenant: str, device: str, kind: TopicKind = TopicKind.POSITIONS) -> str:
    return f"sanitrack/{tenant}/dev/{device}/{kind}"
