"""Time-driven work (APScheduler 3, asyncio). Jobs are one-line calls into services.

The jobs run on the scheduler leader only (appliance.schedule.leader): :class:`Scheduling`
builds them from the database when this process becomes the leader (the first
tick of every planned job is the catch-up of what fell due while nobody led) and
shuts them down when it stops leading.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from appliance.entitlements import jobs as entitlement_jobs
from appliance.fleet import placement
from appliance.groups import service as groups
from appliance.invoices import jobs as invoice_jobs
from appliance.invoices.context import Billing
from appliance.notify import jobs as notify_jobs
from appliance.schedule import clock

if TYPE_CHECKING:
    from appliance.bus.control import Bus
    from appliance.config import Settings

log = logging.getLogger(__name__)


def build(settings: Settings, bus: Bus) -> AsyncIOScheduler:
    sched = AsyncIOScheduler(timezone="UTC")
    now = clock.system()  # APScheduler runs on the machine clock

    async def renew_leases() -> None:
        agents = await asyncio.to_thread(groups.renew_leases, settings.lease_seconds)
        await bus.publish_desired(agents)

    async def failover() -> None:
        agents = await asyncio.to_thread(
            placement.failover, settings.offline_grace_seconds, settings.lease_seconds
        )
        await bus.publish_desired(agents)

    # Both run at once on a new leader: leases ran down while nobody renewed them.
    sched.add_job(
        failover,
        "interval",
        seconds=max(1, min(5, settings.offline_grace_seconds // 3)),
        id="failover",
        next_run_time=now,
        coalesce=True,
        max_instances=1,
    )
    sched.add_job(
        renew_leases,
        "interval",
        seconds=settings.lease_renew_seconds,
        id="renew-leases",
        next_run_time=now,
        coalesce=True,
        max_instances=1,
    )
    # Flat-window edges and free-tier expiry, planned from the database (and caught up).
    entitlement_jobs.install(sched, bus.publish_desired)
    # Month close, charge outbox reconciliation and dunning (catches up at start).
    invoice_jobs.install(sched, Billing.from_settings(settings))
    # Billing mail owed (pay links, failed payments, drafts to approve), over SMTP.
    notify_jobs.install(sched, settings)
    return sched


class Scheduling:
    """The scheduler of a leader: started on election, shut down on standing down."""

    def __init__(self, settings: Settings, bus: Bus) -> None:
        self.settings = settings
        self.bus = bus
        self.sched: AsyncIOScheduler | None = None
        self.elections = 0

    async def on_change(self, leading: bool) -> None:
        if leading and self.sched is None:
            self.elections += 1
            self.sched = build(self.settings, self.bus)
            self.sched.start()
        elif not leading and self.sched is not None:
            sched, self.sched = self.sched, None
            sched.shutdown(wait=False)  # a job already running finishes; none starts
