"""Time-driven work (APScheduler 3, asyncio). Jobs are one-line calls into services."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from appliance.groups import service as groups

if TYPE_CHECKING:
    from appliance.bus import Bus
    from appliance.config import Settings

log = logging.getLogger(__name__)


def build(settings: Settings, bus: Bus) -> AsyncIOScheduler:
    sched = AsyncIOScheduler(timezone="UTC")

    async def renew_leases() -> None:
        agents = await asyncio.to_thread(groups.renew_leases, settings.lease_seconds)
        await bus.publish_desired(agents)

    sched.add_job(
        renew_leases,
        "interval",
        seconds=settings.lease_renew_seconds,
        id="renew-leases",
        coalesce=True,
        max_instances=1,
    )
    return sched
