"""What an independent subscriber counts of a verified group's traffic, by itself.

The same definitions the report uses, computed from the messages as they
arrived: per device topic, sequence numbers from ``_mm.s``.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

# Big enough that a broker's message_size_limit (see LOSSY) drops it, with its JSON.
BIG = "x" * 400
LOSSY = ["message_size_limit 300"]


def scenario(
    url: str, *, group: str = "rep", count: int = 4, topic: str = "rep", listen: bool = False
) -> str:
    """A verified group that loses ~20 % of its messages for 2 s to a LOSSY broker
    (big ones), then only sends small ones, so the last message of each device
    arrives; 20 % duplicates. ``listen``: devices also subscribe to commands."""
    commands = f'    commands: {{topic: "{topic}/{{device_id}}/cmd"}}\n' if listen else ""
    return f"""
templates:
  probe:
    transport:
      mqtt: {{url: "{url}", topic: "{topic}/{{device_id}}", qos: 1}}
    interval: 100ms
    verify: true
    payload:
      seq: {{counter: {{}}}}
      pad: {{choice: {{values: ["x", "{BIG}"], weights: [80, 20]}}}}
    statuses:
      normal: {{}}
      tail: {{payload: {{pad: "x"}}}}
    transitions:
      - {{from: normal, to: tail, after: 2s}}
    faults:
      duplicate: {{rate: 0.2}}
{commands}groups:
  - {{name: {group}, template: probe, count: {count}, seed: 7}}
"""


def own_counts(messages: Iterable[tuple[str, bytes]]) -> dict[str, int]:
    """received, duplicates, reordered, lost (gaps below each device's highest number)."""
    seen: dict[str, set[int]] = {}
    high: dict[str, int] = {}
    received = duplicates = reordered = malformed = 0
    for topic, payload in messages:
        try:
            seq = int(orjson.loads(payload)["_mm"]["s"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            malformed += 1
            continue
        received += 1
        s = seen.setdefault(topic, set())
        if seq in s:
            duplicates += 1
            continue
        if seq < high.get(topic, 0):
            reordered += 1
        high[topic] = max(high.get(topic, 0), seq)
        s.add(seq)
    lost = sum(high[t] - len(seen[t]) for t in seen)
    return {
        "received": received,
        "duplicates": duplicates,
        "reordered": reordered,
        "malformed": malformed,
        "lost": lost,
    }
