"""Scheduler jobs planned from the database: a safety-net tick plus date jobs.

A subclass says what a tick does and which instants are coming; this class puts
an interval job (the first run at start-up: the catch-up after downtime) and one
date job per coming instant on the APScheduler, re-plans them after every tick
and whenever the appliance's clock jumps (tests), and can be kicked from any
thread. Exactly-once is the services' business (unique marker rows), not this.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Callable, Iterable

from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN
from apscheduler.schedulers.base import BaseScheduler

from appliance.schedule import clock


class PlannedJobs:
    prefix = "planned-at-"
    job_id = "planned-due"
    safety_net_seconds = 60

    def __init__(self, sched: BaseScheduler) -> None:
        self.sched = sched
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self.ticks = 0

    async def tick(self) -> None:
        raise NotImplementedError

    def install(self) -> PlannedJobs:
        """Add the jobs; the first tick runs as soon as the scheduler starts."""
        self.sched.add_job(
            self.tick,
            "interval",
            seconds=self.safety_net_seconds,
            id=self.job_id,
            next_run_time=clock.system(),
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
            replace_existing=True,
        )
        self._unsubscribe = clock.on_change(self.kick)
        with contextlib.suppress(RuntimeError):  # installed outside a loop: the first tick sets it
            self._loop = asyncio.get_running_loop()
        self.sched.add_listener(lambda _: self.uninstall(), EVENT_SCHEDULER_SHUTDOWN)
        return self

    def uninstall(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()
            self._unsubscribe = None
        for task in list(self._tasks):
            task.cancel()

    def plan(self, instants: Iterable[dt.datetime]) -> None:
        """One date job per coming instant; jobs for instants no longer coming go."""
        wanted = {
            # Date jobs run on the system clock; the appliance's clock may be ahead (tests).
            f"{self.prefix}{at.isoformat()}": clock.to_system(at) + dt.timedelta(milliseconds=1)
            for at in instants
        }
        for job in self.sched.get_jobs():
            if job.id.startswith(self.prefix) and job.id not in wanted:
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
        """Run a tick soon, from any thread (the clock jumped, something was bought)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return

        def spawn() -> None:
            task = loop.create_task(self.tick())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        loop.call_soon_threadsafe(spawn)
