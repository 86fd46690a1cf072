"""Drill-down: a group's devices and its last messages, an agent's ranges (read-only)."""

from __future__ import annotations

import msgspec


class DeviceRow(msgspec.Struct, kw_only=True):
    index: int
    device_id: str
    agent_id: str
    status: str
    """The device's status in its template (``normal``, ``degraded``, ...)."""
    connected: bool
    sending: bool
    """False while a fault drops it, it is silent, or its status sends nothing."""
    last_at: str | None = None
    """Its last send since the group is watched (ISO 8601, UTC, milliseconds)."""
    last_payload: str | None = None


class GroupDevices(msgspec.Struct, kw_only=True):
    group: str
    state: str
    run_id: int
    count: int
    start: int
    """The first device index of this page."""
    devices: list[DeviceRow] = []
    unanswered: list[str] = []
    """Agents of the group that did not answer in time (their devices are missing)."""
    watching_since: str | None = None
    last_errors: list[str] = []


class TailLine(msgspec.Struct, kw_only=True):
    agent_id: str
    n: int
    """Increases per agent with every message kept: (agent_id, n) tells repeats apart."""
    at: str
    """When it was sent (ISO 8601, UTC, milliseconds)."""
    device_id: str
    topic: str
    status: str
    payload: str
    truncated: bool = False


class GroupTail(msgspec.Struct, kw_only=True):
    group: str
    state: str
    run_id: int
    messages: list[TailLine] = []
    """Oldest first; at most the ``limit`` asked for."""
    unanswered: list[str] = []
    watching_since: str | None = None


class AgentRange(msgspec.Struct, kw_only=True):
    group: str
    run_id: int
    index_start: int
    index_end: int
    """Exclusive."""
    lease_until: str
    state: str = ""
    """What the agent last reported for the group's run: starting, running, stopped."""
    running: int = 0
    sent: int = 0
    errors: int = 0
    last_error: str = ""


class AgentRanges(msgspec.Struct, kw_only=True):
    agent_id: str
    online: bool
    ranges: list[AgentRange] = []
    errors: list[str] = []
    """The agent's own last errors (lease expiries, bad messages, ...)."""
