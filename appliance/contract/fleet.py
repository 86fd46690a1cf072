"""Agents, enrollment and device certificates: ``/api/v1/agents``, ``/api/v1/enrollment-tokens``."""

from __future__ import annotations

from typing import Annotated

import msgspec

from appliance.contract.groups import MAX_COUNT

AGENTS_PATH = "/api/v1/agents"
ENROLLMENT_TOKENS_PATH = "/api/v1/enrollment-tokens"


class Agent(msgspec.Struct, kw_only=True):
    agent_id: str
    hostname: str = ""
    arch: str = ""
    version: str = ""
    online: bool = False
    offline_since: str | None = None
    """ISO 8601, UTC (``Z``); None while online."""
    cores: int = 0
    mem_mb: int = 0
    capacity: int = 0
    assigned: int = 0
    """Mocks placed on it (device indices of running groups)."""
    free: int = 0
    cpu_percent: float = 0.0
    rss_mb: float = 0.0
    revision: int = 0
    """The last desired state published to it."""
    reported_revision: int = 0
    """The last desired state it said it applied."""
    acked_seq: int = 0
    errors: list[str] = []
    """Its own last errors (lease expiries, bad messages, ...)."""
    last_seen: str | None = None
    """ISO 8601, UTC (``Z``); None: never seen."""


class EnrollmentToken(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A one-time token (shown once) and the commands that use it on a board."""

    token: str
    expires_at: str
    """ISO 8601, UTC (``Z``)."""
    url: str
    """The appliance as the board should reach it."""
    command: str
    """Installs the agent from this appliance and enrolls it."""
    enroll_command: str
    """Enrolls a board that already has the agent."""
    warning: str = ""
    """Present when ``url`` is a guess or not reachable from other machines."""


class Enrolled(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An agent's id and bus credentials (the password is shown once)."""

    agent_id: str
    mqtt_url: str
    username: str
    password: str
    mqtt_ca: str = ""
    """The CA (PEM) of an ``mqtts://`` bus, so a board trusts its broker without a system
    store; absent otherwise."""


class Certificates(msgspec.Struct, kw_only=True):
    ca: str
    """The test CA's certificate (PEM)."""
    certificates: dict[str, str]
    """Device id → its client certificate (PEM, CN = device id)."""


class EnrollRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The body of ``POST /api/v1/agents/enroll``: a board trades its one-time token."""

    token: str
    hostname: Annotated[str, msgspec.Meta(max_length=253)] = ""
    arch: Annotated[str, msgspec.Meta(max_length=32)] = ""
    capacity: Annotated[int, msgspec.Meta(ge=1, le=MAX_COUNT)] = 1000
    """Mocks the board may run at once."""


class CertRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The body of ``POST /api/v1/agents/{agent_id}/certificates``."""

    public_key: str
    """PEM: every certificate is for this one key."""
    devices: list[str]
    """Device ids of ranges assigned to the agent."""
