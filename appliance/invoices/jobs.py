"""Scheduler jobs for billing, planned from the database and the appliance's clock.

- the month close at 00:05 on day 1 in every billing time zone in use;
- dunning retries at each failed invoice's ``next_retry_at``;
- reconciliation of charge attempts left pending by a crash, and approved
  invoices nobody started charging.

Each is one call into a service. A safety-net tick runs them all at start-up
(that is the catch-up after downtime: exactly once, by the unique keys) and
every :data:`SAFETY_NET_SECONDS`; date jobs fire on time in between, and are
re-planned whenever the clock jumps (tests) or a tick runs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from apscheduler.schedulers.base import BaseScheduler

from appliance import models
from appliance.errors import ApplianceError
from appliance.invoices import payments, service
from appliance.invoices.context import Billing
from appliance.schedule import clock
from appliance.schedule.planned_jobs import PlannedJobs
from billing.errors import BillingError

log = logging.getLogger(__name__)

SAFETY_NET_SECONDS = 60


class BillingJobs(PlannedJobs):
    prefix = "billing-at-"
    job_id = "billing-due"
    safety_net_seconds = SAFETY_NET_SECONDS

    def __init__(self, sched: BaseScheduler, cfg: Billing) -> None:
        super().__init__(sched)
        self.cfg = cfg

    def run_due(self) -> None:
        """Everything due now, in order: close months, settle the outbox, charge, retry."""
        for step in (
            service.close_due,
            payments.reconcile,
            payments.charge_approved,
            payments.retry_due,
        ):
            try:
                step(self.cfg)
            except (ApplianceError, BillingError) as e:  # one bad step must not stop the rest
                log.error("billing job %s: %s", step.__name__, e)

    async def tick(self) -> None:
        self._loop = asyncio.get_running_loop()
        async with self._lock:
            try:
                await asyncio.to_thread(self.run_due)
            finally:
                self.ticks += 1
                self.plan(await asyncio.to_thread(self._instants))

    def _instants(self) -> list[dt.datetime]:
        now = clock.now()
        zones = {o.timezone for o in models.Org.select(models.Org.timezone).distinct()}
        times = [service.next_close_at(tz, now) for tz in zones]
        times += [clock.aware(t) for t in payments.next_retries()]
        return sorted({t for t in times if t > now})[:50]


def install(sched: BaseScheduler, cfg: Billing) -> BillingJobs:
    return BillingJobs(sched, cfg).install()
