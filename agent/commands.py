"""Devices that answer back: the ``commands`` setting and the replies it produces.

A device subscribes to its command topic; every message there gets a JSON
reply on the reply topic after ``reply_after``, failing (an error reply) at
``fail_rate``, and may move the device to another status. The reply carries
the request's ``id`` so a backend can match it; building it is pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import msgspec
import orjson

from agent.errors import ScenarioError
from agent.spec import convert, parse_duration_ms


class _CommandsDoc(msgspec.Struct, forbid_unknown_fields=True):
    topic: str
    reply_topic: str | None = None
    reply_after: str | int | float = "200ms"
    fail_rate: float = 0.0
    set_status: str | None = None
    qos: Literal[0, 1, 2] = 1


@dataclass(frozen=True)
class Commands:
    topic: str  # patterns with {device_id}, {group}, {index}
    reply_topic: str
    reply_after_s: float
    fail_rate: float
    set_status: str | None
    qos: int


def parse_commands(raw: Any, path: str, check_topic: Any, statuses: list[str]) -> Commands | None:
    if raw is None:
        return None
    doc = convert(raw, _CommandsDoc, path)
    check_topic(doc.topic, f"{path}.topic")
    reply_topic = doc.reply_topic if doc.reply_topic is not None else doc.topic + "/reply"
    check_topic(reply_topic, f"{path}.reply_topic")
    if reply_topic == doc.topic:
        # The device would answer its own replies forever.
        raise ScenarioError(f"{path}.reply_topic", "must differ from topic")
    try:
        after = parse_duration_ms(doc.reply_after) / 1000
    except ValueError as e:
        raise ScenarioError(f"{path}.reply_after", str(e)) from None
    if not 0 <= doc.fail_rate <= 1:
        raise ScenarioError(f"{path}.fail_rate", f"must be between 0 and 1, got {doc.fail_rate}")
    if doc.set_status is not None and doc.set_status not in statuses:
        raise ScenarioError(
            f"{path}.set_status",
            f"unknown status {doc.set_status!r} (known: {', '.join(statuses)})",
        )
    return Commands(doc.topic, reply_topic, after, doc.fail_rate, doc.set_status, doc.qos)


def reply(request: bytes, *, device_id: str, failed: bool, now: float) -> bytes:
    """The device's answer to one command message."""
    body: dict[str, Any] = {}
    try:
        req = orjson.loads(request)
    except orjson.JSONDecodeError:
        req = None
    if isinstance(req, dict):
        if "id" in req:
            body["id"] = req["id"]
        for key in ("command", "cmd", "name"):
            if key in req:
                body["command"] = req[key]
                break
    body["device"] = device_id
    if req is None:
        body["status"] = "error"
        body["error"] = "request is not JSON"
    elif failed:
        body["status"] = "error"
        body["error"] = "simulated failure"
    else:
        body["status"] = "ok"
    body["ts"] = int(now * 1000)
    return orjson.dumps(body)
