"""MQTT reason codes and ack parsing, with plain bytes."""

from __future__ import annotations

from agent.transports import reasons


def test_names_carry_code_and_meaning() -> None:
    assert reasons.name(0x87) == "0x87 not authorized"
    assert reasons.name(0x95) == "0x95 packet too large"
    assert reasons.name(0x97) == "0x97 quota exceeded"
    assert reasons.name(5, v5=False) == "0x05 not authorized"
    assert reasons.name(0x80, v5=False) == "0x80 failure"
    assert reasons.name(0xFE) == "0xFE unknown reason"


def test_ack_reason_absent_means_success() -> None:
    assert reasons.ack_reason(b"\x00\x07") == 0
    assert reasons.ack_reason(b"\x00\x07\x87\x00") == 0x87


def test_suback_codes_skip_v5_properties() -> None:
    # packet id 1, properties of 3 bytes (a reason string "ab"), then two codes
    body = b"\x00\x01" + b"\x05" + b"\x1f\x00\x02ab" + b"\x01\x87"
    assert reasons.suback_codes(body, v5=True) == [0x01, 0x87]
    assert reasons.suback_codes(b"\x00\x01\x80", v5=False) == [0x80]


def test_publish_topic_of_a_stored_packet() -> None:
    topic = b"lab/d1"
    rest = len(topic).to_bytes(2, "big") + topic + b"\x00\x05" + b"{}"
    raw = b"\x32" + bytes([len(rest)]) + rest
    assert reasons.publish_topic(raw) == "lab/d1"
    assert reasons.publish_topic(b"") == ""
