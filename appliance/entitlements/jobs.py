"""Scheduler jobs for entitlements, planned from the database.

At start (and after every clock jump, and whenever a window is bought) the
planner reads the coming window edges from the database and puts one date job
at each; every job, and a periodic safety net, calls the same
``service.apply_due()``. The first run happens at start-up, which is how a
window edge missed while the appliance was down is caught up (exactly once:
``apply_due`` guards each edge with a unique marker row).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable

from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN
from apscheduler.schedulers.base import BaseScheduler

from appliance import clock
from appliance.entitlements import service

log = logging.getLogger(__name__)

Publish = Callable[[set[str]], Awaitable[None]]

_PREFIX = "entitlements-at-"
SAFETY_NET_SECONDS = 30

_running: list[EntitlementJobs] = []


class EntitlementJobs:
    def __init__(self, sched: BaseScheduler, publish: Publish) -> None:
        self.sched = sched
        self.publish = publish
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self.ticks = 0

    def install(self) -> EntitlementJobs:
        """Add the jobs; the first tick runs as soon as the scheduler starts."""
        self.sched.add_job(
            self.tick,
            "interval",
            seconds=SAFETY_NET_SECONDS,
            id="entitlements-due",
            next_run_time=dt.datetime.now(dt.UTC),
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
            replace_existing=True,
        )
        self._unsubscribe = clock.on_change(self.kick)
        with contextlib.suppress(RuntimeError):  # installed outside a loop: the first tick sets it
            self._loop = asyncio.get_running_loop()
        self.sched.add_listener(lambda _: self.uninstall(), EVENT_SCHEDULER_SHUTDOWN)
        _running.append(self)
        return self

    def uninstall(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()
        if self in _running:
            _running.remove(self)
        for task in list(self._tasks):
            task.cancel()

    async def tick(self) -> None:
        """Apply what is due, publish the changed desired states, re-plan the edges."""
        self._loop = asyncio.get_running_loop()
        async with self._lock:
            touched = await asyncio.to_thread(service.apply_due)
            if touched:
                await self.publish(touched)
            await self._plan()
            self.ticks += 1

    async def _plan(self) -> None:
        edges = await asyncio.to_thread(service.pending_times)
        wanted = {}
        for edge in edges:
            # Date jobs run on the system clock; the appliance's clock may be ahead (tests).
            run_at = clock.to_system(edge) + dt.timedelta(milliseconds=1)
            wanted[f"{_PREFIX}{edge.isoformat()}"] = run_at
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
        """Run a tick soon, from any thread (the clock jumped, a window was bought)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return

        def spawn() -> None:
            task = loop.create_task(self.tick())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        loop.call_soon_threadsafe(spawn)


def install(sched: BaseScheduler, publish: Publish) -> EntitlementJobs:
    return EntitlementJobs(sched, publish).install()


def kick() -> None:
    """Tell every running planner that windows changed (called after a purchase)."""
    for jobs in list(_running):
        jobs.kick()
