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
import contextlib
import datetime as dt
import logging
from collections.abc import Callable

from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN
from apscheduler.schedulers.base import BaseScheduler

from appliance import clock, models
from appliance.errors import ApplianceError
from appliance.invoices import payments, service
from appliance.invoices.context import Billing
from billing.errors import BillingError

log = logging.getLogger(__name__)

SAFETY_NET_SECONDS = 60
_PREFIX = "billing-at-"


class BillingJobs:
    def __init__(self, sched: BaseScheduler, cfg: Billing) -> None:
        self.sched = sched
        self.cfg = cfg
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self.ticks = 0

    def install(self) -> BillingJobs:
        self.sched.add_job(
            self.tick,
            "interval",
            seconds=SAFETY_NET_SECONDS,
            id="billing-due",
            next_run_time=dt.datetime.now(dt.UTC),
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
            replace_existing=True,
        )
        self._unsubscribe = clock.on_change(self.kick)
        with contextlib.suppress(RuntimeError):
            self._loop = asyncio.get_running_loop()
        self.sched.add_listener(lambda _: self.uninstall(), EVENT_SCHEDULER_SHUTDOWN)
        return self

    def uninstall(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()
            self._unsubscribe = None
        for task in list(self._tasks):
            task.cancel()

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
                await self._plan()

    def _instants(self) -> list[dt.datetime]:
        now = clock.now()
        zones = {o.timezone for o in models.Org.select(models.Org.timezone).distinct()}
        times = [service.next_close_at(tz, now) for tz in zones]
        times += [clock.aware(t) for t in payments.next_retries()]
        return sorted({t for t in times if t > now})[:50]

    async def _plan(self) -> None:
        wanted = {}
        for at in await asyncio.to_thread(self._instants):
            # Date jobs run on the system clock; the appliance's clock may be ahead (tests).
            wanted[f"{_PREFIX}{at.isoformat()}"] = clock.to_system(at) + dt.timedelta(
                milliseconds=1
            )
        for job in self.sched.get_jobs():
            if job.id.startswith(_PREFIX) and job.id not in wanted:
                job.remove()
        for job_id, run_at in wanted.items():
            self.sched.add_job(
                self.tick,
                "date",
                run_date=run_at,
                id=job_id,
                replace_existing=True,
                misfire_grace_time=None,
                coalesce=True,
            )

    def kick(self) -> None:
        """Run a tick soon, from any thread (the clock jumped)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return

        def spawn() -> None:
            task = loop.create_task(self.tick())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        loop.call_soon_threadsafe(spawn)


def install(sched: BaseScheduler, cfg: Billing) -> BillingJobs:
    return BillingJobs(sched, cfg).install()
