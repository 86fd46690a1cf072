"""One scheduler leader among replicas: an advisory lock on a real PostgreSQL.

Two elections on one database, each on its own connection as two replicas have:
one leads, the other stands by; when the leader's session dies (its backend is
terminated, as the server does when a leader process or host dies) the standby
takes over and the old leader notices and stands down. A job that fell due while
nobody led runs once, on the new leader's start-up tick. SQLite is always the
leader and owned by one process; a declared replica refuses it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg2
import pytest
from click.testing import CliRunner

from appliance import db, models
from appliance.audit.models import AuditEntry
from appliance.command.main import main
from appliance.config import Settings
from appliance.entitlements import service as ent
from appliance.entitlements.models import FlatWindow
from appliance.errors import ApplianceError
from appliance.schedule import clock, leader
from appliance.schedule.scheduler import Scheduling
from tests.unit.appliance.factories import T0

POLL_S = 0.2
DAY = dt.timedelta(days=1)


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> float:
    t0 = time.monotonic()
    while not predicate():
        assert time.monotonic() - t0 < timeout, "timed out"
        await asyncio.sleep(0.02)
    return time.monotonic() - t0


@pytest.fixture
def pg(pg_database: str, pg_dsn: str) -> Iterator[str]:
    database = db.connect(pg_database)
    db.migrate()
    try:
        yield pg_dsn
    finally:
        database.close()
        clock.reset()


class Changes:
    """What an election told its owner, in order."""

    def __init__(self) -> None:
        self.seen: list[bool] = []

    async def __call__(self, leading: bool) -> None:
        self.seen.append(leading)


def election(on_change: leader.OnChange) -> leader.AdvisoryLock:
    found = leader.for_database(db.database.obj, on_change, poll_s=POLL_S)
    assert isinstance(found, leader.AdvisoryLock)
    return found


def terminate(dsn: str, lock: leader.AdvisoryLock) -> None:
    """End the leader's session from outside, as the server does when its peer dies."""
    pid = lock._conn.get_backend_pid()
    admin = psycopg2.connect(dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
    admin.close()


@pytest.mark.pg
async def test_one_leads_the_other_stands_by_and_takes_over_when_the_session_dies(
    pg: str,
) -> None:
    a_seen, b_seen = Changes(), Changes()
    a, b = election(a_seen), election(b_seen)
    await a.start()
    await until(lambda: a.role == leader.LEADER)
    await b.start()
    await asyncio.sleep(5 * POLL_S)  # b has tried the lock several times
    assert (a.role, b.role) == (leader.LEADER, leader.STANDBY)
    assert b_seen.seen == []
    try:
        terminate(pg, a)
        await until(lambda: b.role == leader.LEADER)
        await until(lambda: a.role == leader.STANDBY)
        assert a_seen.seen == [True, False] and b_seen.seen == [True]
        await asyncio.sleep(5 * POLL_S)  # a reconnects and keeps trying: b holds the lock
        assert (a.role, b.role) == (leader.STANDBY, leader.LEADER)

        await b.stop()  # a clean stop closes the session: the lock is free at once
        assert b_seen.seen == [True, False]
        await until(lambda: a.role == leader.LEADER)
    finally:
        await a.stop()
        await b.stop()


class Published:
    """The bus side of the scheduler: which agents were told their desired state."""

    def __init__(self) -> None:
        self.agents: set[str] = set()

    async def publish_desired(self, agents: set[str]) -> None:
        self.agents |= set(agents)


@pytest.mark.pg
async def test_an_edge_due_while_nobody_led_runs_once_when_the_standby_takes_over(
    pg: str, tmp_path: Path
) -> None:
    org = models.Org.create(name="acme")
    clock.travel_to(T0)
    w = ent.buy_flat(org.id, "flat10-30d", T0 + DAY, actor="user:test")
    settings = Settings(data_dir=tmp_path)
    a_jobs, b_jobs = Scheduling(settings, Published()), Scheduling(settings, Published())  # type: ignore[arg-type]
    a, b = election(a_jobs.on_change), election(b_jobs.on_change)
    await a.start()
    await until(lambda: a_jobs.sched is not None)
    await b.start()
    await asyncio.sleep(3 * POLL_S)
    assert b_jobs.sched is None  # the standby schedules nothing
    try:
        # The leader dies like kill -9: its jobs stop with it, then its session ends.
        assert a._task is not None and a_jobs.sched is not None
        a._task.cancel()
        a_jobs.sched.shutdown(wait=False)
        a_jobs.sched = None
        clock.travel_to(T0 + DAY + dt.timedelta(hours=1))  # the window opened meanwhile
        assert FlatWindow.get_by_id(w.id).state == "scheduled"
        terminate(pg, a)

        await until(lambda: b.role == leader.LEADER)
        await until(lambda: FlatWindow.get_by_id(w.id).state == "active")
        await asyncio.sleep(0.5)  # the catch-up and any racing tick have run
        starts = AuditEntry.select().where(AuditEntry.action == "flat.start")
        assert [e.actor for e in starts] == ["scheduler"]
        assert b_jobs.elections == 1
    finally:
        await a.stop()
        await b.stop()


async def test_sqlite_is_always_the_leader_and_is_owned_by_one_process(tmp_path: Path) -> None:
    seen = Changes()
    database = db.connect(f"sqlite:///{tmp_path / 'one.sqlite3'}")
    try:
        only = leader.for_database(db.database.obj, seen)
        assert isinstance(only, leader.Embedded)
        await only.start()
        assert only.role == leader.LEADER and seen.seen == [True]
        await only.stop()
        assert seen.seen == [True, False]
    finally:
        database.close()

    owner = leader.claim_sqlite(tmp_path / "one.sqlite3")
    try:
        with pytest.raises(ApplianceError, match=r"another appliance process \(pid \d+\)"):
            leader.claim_sqlite(tmp_path / "one.sqlite3")
    finally:
        owner.close()
    leader.claim_sqlite(tmp_path / "one.sqlite3").close()  # free again once the owner ends


@pytest.mark.parametrize(
    "args, env",
    [
        (["--replica"], {}),
        ([], {"MOCKMOCK_REPLICA": "1"}),
    ],
)
def test_a_replica_refuses_sqlite_in_one_line(
    tmp_path: Path, args: list[str], env: dict[str, str]
) -> None:
    data = tmp_path / "data"
    done = CliRunner().invoke(
        main,
        ["serve", "--data-dir", str(data), "--mqtt-url", "mqtt://127.0.0.1:1", *args],
        env=env,
    )
    assert done.exit_code == 2
    lines = done.output.strip().splitlines()
    assert lines == [
        "error: --replica: replicas share one PostgreSQL database (--db-url "
        "postgresql://...); SQLite serves a single appliance process"
    ]
    assert not (data / "mockmock.sqlite3").exists()  # nothing half-made
