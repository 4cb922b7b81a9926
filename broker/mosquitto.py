"""Mosquitto password file and ACL written from the devices table (production brokers).

Reload Mosquitto after writing (SIGHUP) for rotations and revocations to apply.
"""

from __future__ import annotations

from collections.abc import Sequence

import fleet
from broker.access import ServiceAccount


def password_file(logins: Sequence[fleet.DeviceLogin], service: ServiceAccount) -> str:
    lines = [f"{service.username}:{fleet.hash_secret(service.password)}"]
    for login in logins:
        username = fleet.device_username(login.device.tenant_slug, login.device.slug)
        lines.append(f"{username}:{login.credential_hash}")
    return "\n".join(lines) + "\n"


def acl_file(logins: Sequence[fleet.DeviceLogin], service: ServiceAccount) -> str:
    blocks = [f"user {service.username}\ntopic readwrite #\n"]
    for login in logins:
        tenant, device = login.device.tenant_slug, login.device.slug
        username = fleet.device_username(tenant, device)
        own = f"sanitrack/{tenant}/dev/{device}"
        blocks.append(
            f"user {username}\n"
            f"topic write {own}/pos\ntopic write {own}/evt\ntopic write {own}/status\n"
            f"topic read {own}/cmd\n"
            f"topic write owntracks/{username}/+\n"
        )
    return "\n".join(blocks)
