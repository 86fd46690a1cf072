"""End-to-end verification: count loss, duplicates, reordering and latency.

With ``verify: true`` every message a mock sends carries ``_mm: {s, t}``, a
per-device sequence number from 1 and the send time in epoch ms. A subscriber
built into the group reads the mocks' topics back from the broker and feeds
each message to :class:`Verifier`, which is pure so it is tested with plain
values. Memory stays bounded per device: duplicates are recognised within a
sliding window of recent sequence numbers.
"""

from __future__ import annotations

from typing import Any

import orjson

from agent import wire

MARK = "_mm"
WINDOW = 4096  # sequence numbers remembered per device for duplicate detection


class _Source:
    __slots__ = ("high", "recent", "unique")

    def __init__(self) -> None:
        self.high = 0  # highest sequence number seen
        self.unique = 0
        self.recent: set[int] = set()


class Verifier:
    """Counts what arrives per source (a device's topic)."""

    def __init__(self) -> None:
        self.sources: dict[Any, _Source] = {}
        self.report = wire.VerifyReport()

    def observe(self, source: Any, seq: int, sent_ms: int, received_ms: float) -> None:
        rep = self.report
        rep.received += 1
        s = self.sources.get(source)
        if s is None:
            s = self.sources[source] = _Source()
        if seq in s.recent or seq <= s.high - WINDOW:
            # Older than the window: assume seen (a late original is rarer than a duplicate).
            rep.duplicates += 1
            return
        if seq < s.high:
            rep.reordered += 1
        else:
            s.high = seq
        s.unique += 1
        s.recent.add(seq)
        if len(s.recent) > WINDOW:
            floor = s.high - WINDOW
            s.recent = {x for x in s.recent if x > floor}
        rep.latency.add(max(0, int((received_ms - sent_ms) * 1000)))

    def observe_payload(self, source: Any, payload: bytes, received_ms: float) -> bool:
        """Parse one message; False (and counted malformed) when it is not ours or not JSON."""
        try:
            body = orjson.loads(payload)
            mark = body[MARK]
            seq, sent = int(mark["s"]), int(mark["t"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            self.report.malformed += 1
            return False
        self.observe(source, seq, sent, received_ms)
        return True

    def gaps(self) -> int:
        """Sequence numbers not (yet) seen below each source's highest: loss so far."""
        return sum(max(0, s.high - s.unique) for s in self.sources.values())

    def finish(self, last_sent: dict[Any, int]) -> wire.VerifyReport:
        """Loss against what each source actually sent (also catches lost tails).

        Malformed messages carry no readable sequence number, so they are taken
        off the loss: they arrived, just not as JSON.
        """
        missing = 0
        for source, n in last_sent.items():
            s = self.sources.get(source)
            missing += n - (s.unique if s else 0)
        self.report.lost = max(0, missing - self.report.malformed)
        return self.report

    def snapshot(self) -> wire.VerifyReport:
        self.report.lost = self.gaps()
        return self.report
