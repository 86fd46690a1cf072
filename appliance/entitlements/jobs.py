"""Scheduler jobs for entitlements, planned from the database.

At start (and after every clock jump, and whenever a window is bought) the
planner reads the coming window edges from the database and puts one date job
at each; every job, and a periodic safety net, calls the same
:func:`apply_due`: the entitlement service applies the window edges and reports
what no longer fits, the groups service stops it. The first run happens at start-up, which is how a
window edge missed while the appliance was down is caught up (exactly once:
``apply_due`` guards each edge with a unique marker row).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable

from apscheduler.schedulers.base import BaseScheduler

from appliance.entitlements import service
from appliance.groups import service as groups
from appliance.schedule.planned_jobs import PlannedJobs

log = logging.getLogger(__name__)

Publish = Callable[[set[str]], Awaitable[None]]

SAFETY_NET_SECONDS = 30

_running: list[EntitlementJobs] = []


def apply_due(now: dt.datetime | None = None) -> set[str]:
    """Apply the due window edges, then stop what they left over capacity; agents to republish."""
    service.apply_due(now)
    return groups.stop_over_capacity(now)


class EntitlementJobs(PlannedJobs):
    prefix = "entitlements-at-"
    job_id = "entitlements-due"
    safety_net_seconds = SAFETY_NET_SECONDS

    def __init__(self, sched: BaseScheduler, publish: Publish) -> None:
        super().__init__(sched)
        self.publish = publish

    def install(self) -> EntitlementJobs:
        super().install()
        _running.append(self)
        return self

    def uninstall(self) -> None:
        super().uninstall()
        if self in _running:
            _running.remove(self)

    async def tick(self) -> None:
        """Apply what is due, publish the changed desired states, re-plan the edges."""
        self._loop = asyncio.get_running_loop()
        async with self._lock:
            touched = await asyncio.to_thread(apply_due)
            if touched:
                await self.publish(touched)
            self.plan(await asyncio.to_thread(service.pending_times))
            self.ticks += 1


def install(sched: BaseScheduler, publish: Publish) -> EntitlementJobs:
    return EntitlementJobs(sched, publish).install()


def kick() -> None:
    """Tell every running planner that windows changed (called after a purchase)."""
    for jobs in list(_running):
        jobs.kick()
