"""More than one kind of message per device: the ``streams`` setting.

The template's own ``topic``/``payload``/``interval`` is the device's main
stream (the one statuses, faults and verify act on). Each extra stream has its
own topic, payload, encoding and timing — every ``interval`` (a heartbeat), or
``when: status_change`` (an event each time the device changes status) — and
shares the device: its names, its status (``{status}`` in a format, or a
``status: {}`` field) and its seed (each stream draws from its own seeded
per-device stream, so adding one does not change the others' values).

```yaml
streams:
  heartbeat: {topic: "lab/{device_id}/hb", interval: 60s,
              payload: {device: {device_id: {}}, up: {counter: {}}}}
  event:     {topic: "lab/{device_id}/events", when: status_change, qos: 1,
              payload: {status: {status: {}}, ts: {timestamp: {}}}}
```
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from agent.encodings import JSON, Encoding, check_payload, parse_encoding, try_encode
from agent.errors import ScenarioError
from agent.generators import sample_values
from agent.spec import convert

MAX_STREAMS = 16


class _StreamDoc(msgspec.Struct, forbid_unknown_fields=True):
    topic: str
    payload: dict[str, Any]
    interval: str | int | float | None = None
    when: Literal["status_change"] | None = None  # not `on`: YAML reads that as true
    encoding: Any = None
    qos: Literal[0, 1, 2] | None = None  # default: the transport's


@dataclass(frozen=True)
class Stream:
    name: str
    topic: str  # pattern with {device_id}, {group}, {index}
    payload: dict[str, Any]  # field name -> spec.Field
    interval_ms: int | None  # None: sent on status changes
    qos: int | None
    encoding: Encoding = JSON

    @property
    def on_status_change(self) -> bool:
        return self.interval_ms is None


def parse_streams(
    raw: Any,
    path: str,
    *,
    main_topic: str,
    parse_field: Callable[[Any, str], Any],
    parse_interval: Callable[[Any, str], int],
    check_topic: Callable[[str, str], None],
    check_fields: Callable[[dict[str, Any], str], None],
) -> tuple[Stream, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict) or not raw:
        raise ScenarioError(path, "must map stream names to settings, e.g. {heartbeat: {...}}")
    if len(raw) > MAX_STREAMS:
        raise ScenarioError(path, f"at most {MAX_STREAMS} streams per template")
    out: list[Stream] = []
    for name, body in raw.items():
        p = f"{path}.{name}"
        if not isinstance(name, str) or not name.isidentifier():
            raise ScenarioError(p, "stream names must be letters, digits and _")
        doc = convert(body, _StreamDoc, p)
        check_topic(doc.topic, f"{p}.topic")
        if doc.topic == main_topic:
            raise ScenarioError(f"{p}.topic", "must differ from the template's own topic")
        if (doc.interval is None) == (doc.when is None):
            raise ScenarioError(p, "give either interval (periodic) or when: status_change")
        interval = None if doc.interval is None else parse_interval(doc.interval, f"{p}.interval")
        if not doc.payload:
            raise ScenarioError(f"{p}.payload", "must have at least one field")
        fields = {k: parse_field(v, f"{p}.payload.{k}") for k, v in doc.payload.items()}
        check_fields(fields, f"{p}.payload")
        enc = parse_encoding(doc.encoding, f"{p}.encoding")
        check_payload(enc, fields, f"{p}.payload")
        if not enc.json:
            try_encode(enc, sample_values(fields), f"{p}.payload")
        out.append(Stream(name, doc.topic, fields, interval, doc.qos, enc))
    return tuple(out)
