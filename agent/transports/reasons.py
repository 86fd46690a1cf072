"""MQTT 5 reason codes and the few packet fields the sender reads from acks.

Pure, so the table and the parsing are tested with plain bytes. A reason code
>= 0x80 in a PUBACK, PUBREC, SUBACK or CONNACK is the broker saying no (not
authorized, packet too large, quota exceeded): the sender counts it as an
error and names the reason, never as a message sent.
"""

from __future__ import annotations

# MQTT 5.0 §2.4, table 2-6 (the codes >= 0x80 a broker answers with).
REASONS: dict[int, str] = {
    0x80: "unspecified error",
    0x81: "malformed packet",
    0x82: "protocol error",
    0x83: "implementation specific error",
    0x84: "unsupported protocol version",
    0x85: "client identifier not valid",
    0x86: "bad user name or password",
    0x87: "not authorized",
    0x88: "server unavailable",
    0x89: "server busy",
    0x8A: "banned",
    0x8C: "bad authentication method",
    0x8F: "topic filter invalid",
    0x90: "topic name invalid",
    0x91: "packet identifier in use",
    0x93: "receive maximum exceeded",
    0x95: "packet too large",
    0x97: "quota exceeded",
    0x99: "payload format invalid",
    0x9A: "retain not supported",
    0x9B: "QoS not supported",
    0x9C: "use another server",
    0x9D: "server moved",
    0x9E: "shared subscriptions not supported",
    0x9F: "connection rate exceeded",
    0xA1: "subscription identifiers not supported",
    0xA2: "wildcard subscriptions not supported",
}

# MQTT 3.1.1 §3.2.2.3: CONNACK return codes.
CONNACK_V311: dict[int, str] = {
    1: "unacceptable protocol version",
    2: "identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
}


def name(code: int, *, v5: bool = True) -> str:
    """``0x87 not authorized``: the code and what it means."""
    text = REASONS.get(code) if v5 or code >= 0x80 else CONNACK_V311.get(code)
    if code == 0x80 and not v5:
        text = "failure"  # 3.1.1 SUBACK has one failure code
    return f"0x{code:02X} {text or 'unknown reason'}"


def ack_reason(packet: bytes) -> int:
    """The reason code of a v5 PUBACK/PUBREC body (packet id first); absent = success."""
    return packet[2] if len(packet) > 2 else 0


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """MQTT's variable byte integer at ``pos``: (value, position after it)."""
    value, shift = 0, 0
    while pos < len(data):
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift > 21:
            break
    raise ValueError("malformed variable byte integer")


def suback_codes(packet: bytes, *, v5: bool) -> list[int]:
    """The per-filter return codes of a SUBACK body (after the packet id and, on v5,
    its properties)."""
    pos = 2
    if v5:
        length, pos = _varint(packet, pos)
        pos += length
    return list(packet[pos:])


def publish_topic(raw: bytes) -> str:
    """The topic of a whole PUBLISH packet as gmqtt stores it (fixed header first);
    empty when it cannot be read."""
    try:
        _, pos = _varint(raw, 1)
        n = int.from_bytes(raw[pos : pos + 2], "big")
        return raw[pos + 2 : pos + 2 + n].decode(errors="replace")
    except (ValueError, IndexError):
        return ""
