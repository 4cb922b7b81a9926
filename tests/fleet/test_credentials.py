from __future__ import annotations

import base64
import hashlib

from fleet import device_username, hash_secret, parse_username, verify_secret


def test_hash_is_mosquittos_pbkdf2_format() -> None:
    salt = b"0123456789ab"
    stored = hash_secret("s3cret", salt=salt)
    _, kind, rounds, salt_b64, digest_b64 = stored.split("$")
    assert (kind, rounds, base64.b64decode(salt_b64)) == ("7", "101", salt)
    assert base64.b64decode(digest_b64) == hashlib.pbkdf2_hmac("sha512", b"s3cret", salt, 101)


def test_verify() -> None:
    stored = hash_secret("right")
    assert verify_secret("right", stored)
    assert not verify_secret("wrong", stored)
    assert not verify_secret("right", "plain-text")


def test_usernames_round_trip_and_reject_garbage() -> None:
    assert parse_username(device_username("hadong-urenco", "truck-007")) == (
        "hadong-urenco",
        "truck-007",
    )
    for bad in ("truck", "a@b@c", "Truck@x", "@x", "x@", "a/b@c"):
        assert parse_username(bad) is None
