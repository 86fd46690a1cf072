"""MQTT 5 PUBLISH properties: user properties, content type, message expiry and
response topic, encoded once per device for the QoS 0 fast path (MQTT 5.0
§3.3.2.3) and handed to gmqtt as keywords for QoS 1/2. Pure."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Properties:
    """One device's properties, placeholders already expanded."""

    user: tuple[tuple[str, str], ...] = ()
    content_type: str | None = None
    message_expiry_s: int | None = None
    response_topic: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def gmqtt(self) -> dict[str, Any]:
        """Keywords for gmqtt.Message (its property names)."""
        out: dict[str, Any] = {}
        if self.message_expiry_s is not None:
            out["message_expiry_interval"] = self.message_expiry_s
        if self.content_type is not None:
            out["content_type"] = self.content_type
        if self.response_topic is not None:
            out["response_topic"] = self.response_topic
        if self.user:
            out["user_property"] = list(self.user)
        return out


def _utf8(s: str) -> bytes:
    raw = s.encode()
    return struct.pack("!H", len(raw)) + raw


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, b = divmod(n, 128)
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def encode(p: Properties | None) -> bytes:
    """The property block of a PUBLISH: its length, then each property."""
    if p is None:
        return b"\x00"
    body = bytearray()
    if p.message_expiry_s is not None:
        body += b"\x02" + struct.pack("!L", p.message_expiry_s)
    if p.content_type is not None:
        body += b"\x03" + _utf8(p.content_type)
    if p.response_topic is not None:
        body += b"\x08" + _utf8(p.response_topic)
    for k, v in p.user:
        body += b"\x26" + _utf8(k) + _utf8(v)
    return _varint(len(body)) + bytes(body)
