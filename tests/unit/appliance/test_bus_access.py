"""The control-bus rules and password hashes, as plain values (no broker)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from appliance.fleet import acl
from appliance.fleet.placement import split

A = acl.Identity("agent", "a1")
APP = acl.Identity("appliance")


@pytest.mark.parametrize(
    ("who", "topic", "allowed"),
    [
        (A, "mm/v1/agents/a1/usage", True),
        (A, "mm/v1/agents/a1/usage/ack", True),
        (A, "mm/v1/agents/a2/usage", False),
        (A, "mm/v1/agents/a10/usage", False),  # a prefix of another id is not its own
        (A, "mm/v1/agents/a1", False),
        (A, "lab/x", False),
        (APP, "mm/v1/agents/a2/desired", True),
        (APP, "mm/v2/x", False),
        (None, "lab/x/telemetry", True),
        (None, "mm", False),
        (None, "mm/v1/agents/a1/presence", False),
        (None, "mmm/x", True),
    ],
)
def test_publish_and_receive(who: acl.Identity | None, topic: str, allowed: bool) -> None:
    assert acl.may_publish(who, topic) is allowed
    assert acl.may_receive(who, topic) is allowed


@pytest.mark.parametrize(
    ("who", "topic_filter", "allowed"),
    [
        (A, "mm/v1/agents/a1/#", True),
        (A, "mm/v1/agents/a1/desired", True),
        (A, "mm/v1/agents/+/desired", False),
        (A, "mm/#", False),
        (A, "#", False),
        (APP, "mm/v1/agents/+/presence", True),
        (APP, "#", False),
        # Anonymous wildcards are fine: mm/ messages are withheld one by one.
        (None, "#", True),
        (None, "+/v1/agents/a1/desired", True),
        (None, "mm/#", False),
        (None, "lab/#", True),
    ],
)
def test_subscribe(who: acl.Identity | None, topic_filter: str, allowed: bool) -> None:
    assert acl.may_subscribe(who, topic_filter) is allowed


def test_agent_ids_that_would_widen_a_topic_are_refused() -> None:
    for bad in ("", "+", "#", "a/b"):
        with pytest.raises(ValueError, match="agent_id"):
            acl.Identity("agent", bad)


def test_hash_round_trip_and_wrong_password() -> None:
    stored = acl.hash_password("s3cret")
    assert stored.startswith("$7$") and "s3cret" not in stored
    assert acl.verify_password("s3cret", stored)
    assert not acl.verify_password("s3cret ", stored)
    assert not acl.verify_password("x", "$7$garbage")
    assert not acl.verify_password("x", "")


@pytest.mark.skipif(not shutil.which("mosquitto_passwd"), reason="mosquitto_passwd not installed")
def test_hashes_are_mosquitto_passwd_compatible(tmp_path: Path) -> None:
    """What mosquitto_passwd writes, we verify; same format, so Mosquitto reads ours."""
    path = tmp_path / "pw"
    path.touch()
    subprocess.run(["mosquitto_passwd", "-b", str(path), "u", "pa:ss"], check=True, timeout=30)
    stored = path.read_text().strip().split(":", 1)[1]
    assert acl.verify_password("pa:ss", stored)
    assert not acl.verify_password("pa:sS", stored)


def test_acl_file_gives_each_agent_its_own_channel() -> None:
    text = acl.mosquitto_acl_file(["mm-appliance-1"], [("a1", "a1"), ("agent-a2", "a2")])
    lines = text.splitlines()
    # anonymous section first (before any `user` line)
    first_user = lines.index("user mm-appliance-1")
    assert {"topic readwrite #", "topic deny mm/#"} <= set(lines[:first_user])
    assert "pattern readwrite mm/v1/agents/%u/#" in lines
    assert lines[first_user + 1] == "topic readwrite mm/v1/#"
    # an agent whose username is not its id gets an explicit block
    i = lines.index("user agent-a2")
    assert lines[i + 1] == "topic readwrite mm/v1/agents/a2/#"
    assert "user a1" not in lines


def test_password_file_skips_hashes_mosquitto_cannot_read() -> None:
    good = acl.hash_password("x")
    text = acl.mosquitto_password_file([("b", good), ("a", "0" * 64)])
    assert text == f"b:{good}\n"


@pytest.mark.parametrize(
    ("count", "free", "want"),
    [
        (300, [150, 150, 150], [100, 100, 100]),
        (100, [50, 150], [25, 75]),
        (10, [3, 3, 3, 3], [3, 3, 2, 2]),
        (7, [0, 10], [0, 7]),
        (0, [5, 5], [0, 0]),
        (9, [4, 5], [4, 5]),
    ],
)
def test_split_by_free_capacity(count: int, free: list[int], want: list[int]) -> None:
    got = split(count, free)
    assert got == want
    assert sum(got) == count and all(g <= f for g, f in zip(got, free, strict=True))


def test_split_refuses_what_does_not_fit() -> None:
    with pytest.raises(ValueError):
        split(11, [5, 5])
