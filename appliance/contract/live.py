"""The live feed (WebSocket ``/api/v1/live``): one snapshot a second."""

from __future__ import annotations

import msgspec


class Lateness(msgspec.Struct, kw_only=True):
    """How late sends were against their schedule in the current run (ms)."""

    p50: float = 0.0
    p99: float = 0.0


class LiveAgent(msgspec.Struct, kw_only=True):
    agent_id: str
    org: str = ""
    hostname: str = ""
    online: bool = False
    capacity: int = 0
    assigned: int = 0
    cpu_percent: float = 0.0
    rss_mb: float = 0.0
    last_seen: str | None = None
    """ISO 8601 with offset; None: never seen."""


class LiveGroup(msgspec.Struct, kw_only=True):
    org: str = ""
    name: str
    state: str = "stopped"
    count: int = 0
    run_id: int = 0
    running: int = 0
    sent: int = 0
    """Messages sent in the current run."""
    errors: int = 0
    sent_per_s: float = 0.0
    """The rise of the sent counter between the agents' reports over the last
    ``rate_window_s`` seconds, divided by the time between those reports; 0 once stopped."""
    lateness_ms: Lateness = msgspec.field(default_factory=Lateness)


class LiveTotals(msgspec.Struct, kw_only=True):
    agents_online: int = 0
    groups_running: int = 0
    mocks_running: int = 0
    sent: int = 0
    errors: int = 0
    sent_per_s: float = 0.0


class LiveSnapshot(msgspec.Struct, kw_only=True):
    at: str = ""
    """When the appliance read these figures (ISO 8601, UTC)."""
    bus_connected: bool = False
    rate_window_s: float = 0.0
    agents: list[LiveAgent] = []
    groups: list[LiveGroup] = []
    totals: LiveTotals = msgspec.field(default_factory=LiveTotals)


class LiveError(msgspec.Struct, kw_only=True):
    """Sent instead of a snapshot when the feed refuses the caller (then it closes)."""

    error: str
