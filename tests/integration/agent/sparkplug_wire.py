"""An independent reader of Sparkplug B payloads: protobuf's wire format, decoded by
hand with the field numbers of the Eclipse Tahu schema (agent/sparkplug_b.proto), so
a test does not trust the engine's own compiler to check the engine."""

from __future__ import annotations

import struct
from typing import Any

# Payload: timestamp=1, metrics=2, seq=3. Metric: name=1, alias=2, timestamp=3,
# datatype=4, is_null=7, int_value=10, long_value=11, float_value=12,
# double_value=13, boolean_value=14, string_value=15.
VALUES = {10: "int", 11: "long", 12: "float", 13: "double", 14: "bool", 15: "string"}


def _varint(b: bytes, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        if not c & 0x80:
            return n, i
        shift += 7


def _fields(b: bytes) -> list[tuple[int, Any]]:
    out, i = [], 0
    while i < len(b):
        key, i = _varint(b, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _varint(b, i)
        elif wire == 1:
            v, i = b[i : i + 8], i + 8
        elif wire == 5:
            v, i = b[i : i + 4], i + 4
        elif wire == 2:
            n, i = _varint(b, i)
            v, i = b[i : i + n], i + n
        else:
            raise ValueError(f"wire type {wire}")
        out.append((num, v))
    return out


def decode(data: bytes) -> dict[str, Any]:
    """{timestamp, seq, metrics: {name: (datatype, value)}}"""
    out: dict[str, Any] = {"timestamp": None, "seq": None, "metrics": {}}
    for num, v in _fields(data):
        if num == 1:
            out["timestamp"] = v
        elif num == 3:
            out["seq"] = v
        elif num == 2:
            m = dict(_fields(v))
            value: Any = None
            for k, kind in VALUES.items():
                if k in m:
                    raw = m[k]
                    value = {
                        "string": lambda r: r.decode(),
                        "double": lambda r: struct.unpack("<d", r)[0],
                        "float": lambda r: struct.unpack("<f", r)[0],
                        "bool": bool,
                    }.get(kind, lambda r: r)(raw)
            out["metrics"][m[1].decode()] = (m.get(4), value)
    return out
