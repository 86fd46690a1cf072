"""``GET /api/v1/health`` and ``/api/v1/ready``: is the appliance up, and is it whole?"""

from __future__ import annotations

import msgspec

HEALTH_PATH = "/api/v1/health"


class Health(msgspec.Struct, kw_only=True):
    status: str
    """ok | degraded"""
    version: str
    database: str
    """sqlite | postgresql"""
    database_ok: bool
    bus_connected: bool
    agents_online: int
    problems: list[str]
    scheduler: str = "standby"
    """leader | standby: one leader among replicas runs the scheduler
    (appliance.schedule.leader)."""
