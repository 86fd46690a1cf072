"""The scheduler fires flat-window edges on time by the appliance's clock, and catches
up what it missed while down exactly once. A real AsyncIOScheduler; the clock jumps."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from appliance import models
from appliance.audit.models import AuditEntry
from appliance.entitlements import jobs
from appliance.entitlements import service as ent
from appliance.entitlements.models import FlatWindow
from appliance.schedule import clock
from tests.unit.appliance.factories import T0, group, online_agent, start

DAY = dt.timedelta(days=1)


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def window_state(window_id: int) -> str:
    return FlatWindow.get_by_id(window_id).state


class Published:
    def __init__(self) -> None:
        self.agents: set[str] = set()

    async def __call__(self, agents: set[str]) -> None:
        self.agents |= agents


@pytest.fixture
async def scheduler():
    made: list[AsyncIOScheduler] = []

    def make(publish: Published) -> jobs.EntitlementJobs:
        sched = AsyncIOScheduler(timezone="UTC")
        installed = jobs.install(sched, publish)
        sched.start()
        made.append(sched)
        return installed

    yield make
    for sched in made:
        sched.shutdown(wait=False)
    clock.reset()


async def test_a_flat_window_starts_and_ends_on_schedule(org: models.Org, scheduler) -> None:
    agent = online_agent(org)
    clock.travel_to(T0)
    w = ent.buy_flat(org.id, "flat10-30d", T0 + DAY, actor="user:test")
    group(org, "f", 10, "flat:flat10-30d")
    published = Published()
    planner = scheduler(published)
    await until(lambda: planner.ticks >= 1)  # the start-up run
    assert window_state(w.id) == "scheduled"

    # A moment before the window opens; the job planned from the database fires on time.
    clock.travel_to(T0 + DAY - dt.timedelta(milliseconds=300))
    await asyncio.sleep(0.1)
    assert window_state(w.id) == "scheduled"
    await until(lambda: window_state(w.id) == "active", timeout=3)
    assert clock.now() >= T0 + DAY
    start(org, "f")

    clock.travel_to(T0 + 31 * DAY - dt.timedelta(milliseconds=300))
    await asyncio.sleep(0.1)
    assert window_state(w.id) == "active"
    await until(lambda: window_state(w.id) == "ended", timeout=3)
    await until(lambda: agent in published.agents, timeout=3)  # told to stop its mocks
    assert models.Group.get(models.Group.name == "f").state == "stopped"
    starts = AuditEntry.select().where(AuditEntry.action == "flat.start")
    assert [e.actor for e in starts] == ["scheduler"]


async def test_missed_edges_are_caught_up_once_by_two_starting_schedulers(
    org: models.Org, scheduler
) -> None:
    clock.travel_to(T0)
    w = ent.buy_flat(org.id, "flat100-30d", T0 + DAY, actor="user:test")
    # The appliance was down across the whole window; two replicas come up at once.
    clock.travel_to(T0 + 40 * DAY)
    a, b = scheduler(Published()), scheduler(Published())
    await until(lambda: a.ticks >= 1 and b.ticks >= 1)
    assert window_state(w.id) == "ended"
    edges = [e.action for e in AuditEntry.select().where(AuditEntry.action.startswith("flat."))]
    assert edges == ["flat.buy", "flat.start", "flat.end"]


async def test_jobs_are_planned_from_the_database_at_start(org: models.Org, scheduler) -> None:
    clock.travel_to(T0)
    ent.buy_flat(org.id, "flat10-30d", T0 + 2 * DAY, actor="user:test")
    ent.buy_flat(org.id, "flat10-30d", T0 + 5 * DAY, actor="user:test")
    planner = scheduler(Published())
    await until(lambda: planner.ticks >= 1)
    planned = sorted(j.id for j in planner.sched.get_jobs() if j.id.startswith("entitlements-at"))
    assert len(planned) == 4  # two starts and two ends
    assert "entitlements-due" in {j.id for j in planner.sched.get_jobs()}
