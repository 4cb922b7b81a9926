"""Device credentials in Mosquitto's password-file format.

Device secrets are random 192-bit tokens made by the server, not chosen by
people, so the fast PBKDF2 that Mosquitto uses ($7$, SHA-512, 101 rounds) is
enough and lets thousands of devices log in at once. Storing the same format
means `sanitrack broker-export` can write a Mosquitto password file
straight from the devices table.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

_ITERATIONS = 101
_SALT_BYTES = 12
_FORMAT = re.compile(r"^\$7\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$")
SLUG = re.compile(r"^[a-z0-9-]{1,64}$")


def new_secret() -> str:
    return secrets.token_urlsafe(24)


def hash_secret(secret: str, *, salt: bytes | None = None) -> str:
    salt = secrets.token_bytes(_SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, _ITERATIONS)
    return f"$7${_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_secret(secret: str, stored: str) -> bool:
    match = _FORMAT.match(stored)
    if match is None:
        return False
    iterations, salt, expected = int(match[1]), base64.b64decode(match[2]), match[3]
    digest = hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, iterations)
    return hmac.compare_digest(base64.b64encode(digest).decode(), expected)


def device_username(tenant: str, device: str) -> str:
    """The MQTT username of a device: ``{device}@{tenant}``.

    '@' is not a slug character, so the split is unambiguous. OwnTracks
    phones keep their default topic ``owntracks/{username}/{deviceid}``.
    """
    return f"{device}@{tenant}"


def parse_username(username: str) -> tuple[str, str] | None:
    """``(tenant, device)`` of a device username, or None if it is not one."""
    device, sep, tenant = username.partition("@")
    if not sep or not SLUG.match(device) or not SLUG.match(tenant):
        return None
    return tenant, device
