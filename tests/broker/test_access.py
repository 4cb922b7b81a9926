from __future__ import annotations

import pytest

from broker import Action, device_may

ME = "truck-1@hadong"


@pytest.mark.parametrize(
    ("action", "topic", "allowed"),
    [
        (Action.PUBLISH, "sanitrack/hadong/dev/truck-1/pos", True),
        (Action.PUBLISH, "sanitrack/hadong/dev/truck-1/evt", True),
        (Action.PUBLISH, "sanitrack/hadong/dev/truck-1/status", True),
        (Action.PUBLISH, "sanitrack/hadong/dev/truck-2/pos", False),
        (Action.PUBLISH, "sanitrack/other/dev/truck-1/pos", False),
        (Action.PUBLISH, "sanitrack/hadong/dev/truck-1/cmd", False),
        (Action.PUBLISH, "sanitrack/hadong/dev/truck-1/pos/extra", False),
        (Action.PUBLISH, f"owntracks/{ME}/phone", True),
        (Action.PUBLISH, "owntracks/truck-2@hadong/phone", False),
        (Action.PUBLISH, f"owntracks/{ME}/a/b", False),
        (Action.SUBSCRIBE, "sanitrack/hadong/dev/truck-1/cmd", True),
        (Action.SUBSCRIBE, "sanitrack/hadong/dev/+/cmd", False),
        (Action.SUBSCRIBE, "sanitrack/#", False),
        (Action.RECEIVE, "sanitrack/hadong/dev/truck-2/cmd", False),
    ],
)
def test_a_device_uses_only_its_own_topics(action: Action, topic: str, allowed: bool) -> None:
    assert device_may(action, ME, topic) is allowed


def test_names_that_are_not_device_logins_get_nothing() -> None:
    assert not device_may(Action.PUBLISH, "admin", "sanitrack/hadong/dev/truck-1/pos")
