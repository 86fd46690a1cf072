"""What the live feed said last, plus a short history per group for the sparklines (pure)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import msgspec

from appliance.contract.groups import Group, LatenessMax
from appliance.contract.live import LiveAgent, LiveError, LiveGroup, LiveSnapshot, LiveTotals

HISTORY = 120
"""Samples kept per series (two minutes at one snapshot a second)."""


@dataclass
class Series:
    sent_per_s: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))
    errors_per_s: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))
    p99_ms: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))
    last_errors: int | None = None


@dataclass
class LiveModel:
    agents: dict[str, LiveAgent] = field(default_factory=dict)
    groups: dict[str, LiveGroup] = field(default_factory=dict)
    totals: LiveTotals = field(default_factory=LiveTotals)
    series: dict[str, Series] = field(default_factory=dict)
    error: str | None = None
    updates: int = 0
    received_at: float | None = None
    """When the last snapshot arrived, on the app's clock."""
    rate_window_s: float = 0.0

    def apply(self, snap: LiveSnapshot | LiveError, at: float | None = None) -> None:
        """Take one snapshot; an error keeps the last figures (they age on screen)."""
        if isinstance(snap, LiveError):
            self.error = snap.error
            return
        self.error = None
        self.updates += 1
        self.received_at = at
        self.rate_window_s = snap.rate_window_s
        self.agents = {a.agent_id: a for a in snap.agents}
        self.groups = {g.name: g for g in snap.groups}
        self.totals = snap.totals
        for name, g in self.groups.items():
            s = self.series.setdefault(name, Series())
            s.sent_per_s.append(g.sent_per_s)
            # Errors are a counter per run: a new run (lower count) starts from zero.
            prev = (
                s.last_errors
                if s.last_errors is not None and s.last_errors <= g.errors
                else g.errors
            )
            s.errors_per_s.append(float(g.errors - prev))
            s.last_errors = g.errors
            s.p99_ms.append(g.lateness_ms.p99)
        for gone in set(self.series) - set(self.groups):
            del self.series[gone]


def agent_rates(groups: list[Group], rates: dict[str, float]) -> dict[str, float]:
    """Sent/s per agent, spread from each group's rate by the share of its devices placed there.

    The appliance counts sends per group; an agent's share is its slice of the
    group's device range, which is what its mocks send at equal intervals.
    """
    out: dict[str, float] = {}
    for g in groups:
        rate = rates.get(g.name, 0.0)
        total = sum(p.index_end - p.index_start for p in g.placement)
        if not rate or not total:
            continue
        for p in g.placement:
            share = (p.index_end - p.index_start) / total
            out[p.agent_id] = out.get(p.agent_id, 0.0) + rate * share
    return out


def merge_live(g: Group, model: LiveModel, rate: float = 0.0) -> tuple[Group, float]:
    """A group's REST document with the feed's newer figures of the same run, and its sent/s
    (the REST API has none: ``rate`` until the feed tells)."""
    live = model.groups.get(g.name)
    if live is None or live.run_id != g.run_id:
        return g, rate
    lateness = LatenessMax(
        p50=live.lateness_ms.p50, p99=live.lateness_ms.p99, max=g.lateness_ms.max
    )
    merged = msgspec.structs.replace(
        g,
        state=live.state,
        running=live.running,
        sent=live.sent,
        errors=live.errors,
        lateness_ms=lateness,
    )
    return merged, live.sent_per_s
