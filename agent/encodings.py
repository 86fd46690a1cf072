"""Payload encodings: how a message's values become bytes on the wire.

``encoding: json`` (the default), ``raw`` (one field, its text or bytes as is),
``hex`` (one field of hex digits, sent as those bytes), ``msgpack``, ``cbor``, or
``{protobuf: {file: reading.proto, message: lab.Reading}}`` — the ``.proto`` is
read when the scenario loads (inlined as ``schema``, like replay files) and
compiled in Python, so neither the appliance nor an agent reads files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson

from agent.errors import ScenarioError
from agent.spec import convert

KINDS = ("json", "raw", "hex", "msgpack", "cbor", "protobuf")


class _ProtobufDoc(msgspec.Struct, forbid_unknown_fields=True):
    message: str
    schema: str | None = None  # the .proto source (what `file` becomes when loaded)
    file: str | None = None


class _EncodingDoc(msgspec.Struct, forbid_unknown_fields=True):
    protobuf: _ProtobufDoc


@dataclass(frozen=True)
class Encoding:
    kind: str = "json"
    schema: str = ""  # protobuf: the .proto source
    message: str = ""  # protobuf: the message's full name
    dumps: Callable[[Any], bytes] = orjson.dumps

    @property
    def json(self) -> bool:
        return self.kind == "json"


JSON = Encoding()


def _single(values: dict[str, Any]) -> Any:
    # A status's `omit` can leave none; the template check keeps it at one at most.
    return next(iter(values.values()), b"")


def _raw(values: dict[str, Any]) -> bytes:
    v = _single(values)
    if isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode()
    if isinstance(v, bool | int | float):
        return str(v).encode()
    return orjson.dumps(v)


def _hex(values: dict[str, Any]) -> bytes:
    v = _single(values)
    try:
        return bytes.fromhex(v if isinstance(v, str) else "")
    except ValueError:
        return str(v).encode()  # not hex after a fault (wrong_type): send what it is


def _msgpack(values: Any) -> bytes:
    import msgpack

    return bytes(msgpack.packb(values))


def _cbor(values: Any) -> bytes:
    import cbor2

    return bytes(cbor2.dumps(values))


def parse_encoding(raw: Any, path: str) -> Encoding:
    if raw is None or raw == "json":
        return JSON
    if isinstance(raw, str):
        simple = {"raw": _raw, "hex": _hex, "msgpack": _msgpack, "cbor": _cbor}
        if raw not in simple:
            raise ScenarioError(path, f"unknown encoding {raw!r} (known: {', '.join(KINDS)})")
        return Encoding(raw, dumps=simple[raw])

    doc = convert(raw, _EncodingDoc, path).protobuf
    ppath = f"{path}.protobuf"
    if doc.file is not None:
        raise ScenarioError(
            f"{ppath}.file",
            "is only read from a scenario file (mockmock run, bench, preview); "
            "send the .proto inline as schema",
        )
    if not doc.schema:
        raise ScenarioError(f"{ppath}.schema", "must hold the .proto source (or use file)")
    from agent import protobuf

    cls = protobuf.message_class(doc.schema, doc.message, f"{ppath}.message")
    return Encoding("protobuf", doc.schema, doc.message, protobuf.encoder(cls, ppath))


def check_payload(enc: Encoding, fields: dict[str, Any], path: str) -> None:
    """What an encoding needs of a message's fields (checked for every status)."""
    if enc.kind in ("raw", "hex") and len(fields) > 1:
        raise ScenarioError(
            path, f"encoding {enc.kind} sends one field; this message has {len(fields)}"
        )
    if enc.kind == "protobuf":
        from agent import protobuf

        cls = protobuf.message_class(enc.schema, enc.message, path)
        known = protobuf.field_names(cls)
        for k in fields:
            if k not in known:
                raise ScenarioError(
                    f"{path}.{k}",
                    f"message {enc.message} has no field {k!r} (fields: {', '.join(known)})",
                )


def try_encode(enc: Encoding, values: dict[str, Any], path: str) -> None:
    """Encode one sample message when the scenario loads: a value of the wrong type
    for a protobuf field is one line now, not an error per send later."""
    if enc.json:
        return
    try:
        enc.dumps(values)
    except Exception as e:  # each codec raises its own (ParseError, TypeError, ...)
        raise ScenarioError(path, f"cannot encode as {enc.kind}: {e}") from None
