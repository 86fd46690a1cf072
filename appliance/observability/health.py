"""Health (is the appliance itself up, and is it whole?) and readiness for balancers.

``status`` is ``ok`` only when the database answers and the control bus is
connected; otherwise ``degraded`` with the reasons in ``problems``. The health
route always answers 200 while the process serves (liveness); the readiness
route answers 503 while degraded, so a load balancer or an orchestrator sends
no traffic to a replica that cannot reach its bus or database.
"""

from __future__ import annotations

import peewee

from appliance import __version__, models
from appliance.contract.health import Health
from appliance.db import database


def _database() -> tuple[bool, int, str]:
    """(answers, agents online, problem) from one round trip."""
    try:
        online = models.Agent.select().where(models.Agent.online == True).count()  # noqa: E712
    except peewee.DatabaseError as e:
        database.close()  # the next request reconnects
        return False, 0, f"database: {' '.join(str(e).split())[:200]}"
    return True, online, ""


def check(database_url: str, bus_connected: bool, scheduler: str = "standby") -> Health:
    ok, online, problem = _database()
    problems = [problem] if problem else []
    if not bus_connected:
        problems.append("control bus: not connected (see the appliance log)")
    return Health(
        status="ok" if not problems else "degraded",
        version=__version__,
        database=database_url.split(":", 1)[0],
        database_ok=ok,
        bus_connected=bus_connected,
        agents_online=online,
        problems=problems,
        scheduler=scheduler,
    )
