"""Templates and groups: the documents of ``/api/v1/templates`` and ``/api/v1/groups``."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from appliance.contract.live import Lateness

TEMPLATES_PATH = "/api/v1/templates"
GROUPS_PATH = "/api/v1/groups"

# The bounds of agent/limits.py, which this module may not import (the TUI loads no agent
# code); tests/unit/test_contract_bounds.py keeps the two equal.
MAX_COUNT = 1_000_000
"""Devices in one group."""
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
"""Template and group names (a path segment, a topic placeholder, a client-id prefix)."""
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
Count = Annotated[int, msgspec.Meta(ge=1, le=MAX_COUNT)]
Seed = Annotated[int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX)]
Name = Annotated[str, msgspec.Meta(pattern=NAME_PATTERN)]


class GroupSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The body of ``PUT /api/v1/groups/{name}``."""

    template: Name
    count: Count
    """Devices, 1 to 1,000,000."""
    seed: Seed | None = None
    """Same seed, same streams (any int64)."""
    entitlement: Annotated[str, msgspec.Meta(max_length=80)] | None = None


class ScaleRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The body of ``POST /api/v1/groups/{name}/scale``."""

    count: Count


class Template(msgspec.Struct, kw_only=True):
    name: str
    version: int
    """Goes up by one whenever a save changes the body."""
    spec: dict[str, Any]
    """The template as stored (normalised; payload fields in the order written)."""
    updated_at: str
    """ISO 8601, UTC (``Z``)."""


class LatenessMax(Lateness, kw_only=True):
    max: float = 0.0


class Placed(msgspec.Struct, kw_only=True):
    """One range of the group's device indices and the agent that runs it."""

    agent_id: str
    agent_online: bool = True
    index_start: int
    index_end: int
    """Exclusive."""
    lease_until: float = 0.0
    """Unix seconds: the agent stops the range unless the appliance renews it by then."""


class StatusFigures(msgspec.Struct, kw_only=True):
    devices: int = 0
    """Devices in this status now."""
    seconds: float = 0.0
    """Device-seconds spent in it."""
    sends: int = 0


class Transitions(msgspec.Struct, kw_only=True):
    total: int = 0
    by: dict[str, int] = {}
    """Per ``from->to`` move."""


class Commands(msgspec.Struct, kw_only=True):
    received: int = 0
    replied_ok: int = 0
    replied_error: int = 0


class Verify(msgspec.Struct, kw_only=True):
    """What the group's own subscriber saw of the messages (``verify`` in the template)."""

    received: int = 0
    lost: int = 0
    duplicates: int = 0
    reordered: int = 0
    malformed: int = 0
    loss_rate: float = 0.0
    latency_ms: LatenessMax = msgspec.field(default_factory=LatenessMax)


class Group(msgspec.Struct, kw_only=True):
    name: str
    template: str
    count: int
    seed: int | None = None
    entitlement: str = ""
    """The group's own, or its org's default."""
    state: str = "stopped"
    """running | stopped"""
    run_id: int = 0
    running: int = 0
    """Mocks running in the current run (0 once stopped)."""
    sent: int = 0
    errors: int = 0
    lateness_ms: LatenessMax = msgspec.field(default_factory=LatenessMax)
    agents_reporting: int = 0
    agents_stopped: int = 0
    last_errors: list[str] = []
    device_seconds: float = 0.0
    placement: list[Placed] = []
    faults: dict[str, int] = {}
    statuses: dict[str, StatusFigures] = {}
    transitions: Transitions = msgspec.field(default_factory=Transitions)
    commands: Commands = msgspec.field(default_factory=Commands)
    reconnects: int = 0
    skipped: int = 0
    verify: Verify | None = None
    ready: int = 0
    """Devices connected and subscribed (those that listen: commands, on_message)."""
