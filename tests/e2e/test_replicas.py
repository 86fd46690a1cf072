"""Two appliance replicas on one PostgreSQL and one broker survive kill -9 of the leader.

Real processes: two ``mockmock serve --replica`` on a private PostgreSQL and
Mosquitto (leases of 6 s renewed every 2 s), one enrolled ``mockmock-agent run``
whose mocks publish on the same broker, and an independent subscriber. The
scheduler leader is killed with SIGKILL mid-run: the standby leads within 15 s and
keeps renewing the leases, so no device ever stops, across several lease periods;
the usage the agent reported (through whichever replica got it) equals, in
device-seconds, what the subscriber received at one message a second. The dead
replica comes back as a standby, and a month close started on both at once makes
one invoice per org.
"""

from __future__ import annotations

import datetime as dt
import itertools
import shutil
import threading
import time
from collections import defaultdict
from pathlib import Path

import psycopg2
import pytest

from tests.e2e.fleet import Watcher, agent_proc, enroll, online, serve, wait
from tests.fixtures.processes import Appliance

pytestmark = [pytest.mark.mqtt, pytest.mark.pg, pytest.mark.slow]

LEASE_S = 6
RENEW_S = 2
DEVICES = 30
RUN_AFTER_KILL_S = 4 * LEASE_S  # several lease periods without the old leader
TAKEOVER_LIMIT_S = 15


def role(app: Appliance) -> str:
    return app.api("GET", "/api/v1/health", auth=False)["scheduler"]


def max_gap(times: list[float]) -> float:
    return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


def seed_orgs_with_last_month_usage(app: Appliance, db_url: str, n: int) -> list[int]:
    """Orgs registered 70 days ago with two hours of cn10 last month (UTC)."""
    ids = [app.api("POST", "/api/v1/orgs", {"name": f"tenant-{i}"})["id"] for i in range(n)]
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last_month = (first - dt.timedelta(days=1)).replace(day=10, hour=9)
    with psycopg2.connect(db_url) as conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE org SET registered_at = %s WHERE id = ANY(%s)",
            (now - dt.timedelta(days=70), ids),
        )
        for org_id in ids:
            cur.execute(
                "INSERT INTO entitlement_interval "
                '(org_id, kind, item, capacity, group_id, run_id, start, "end") '
                "VALUES (%s, 'on_demand', 'cn10', 10, 0, 0, %s, %s)",
                (org_id, last_month, last_month + dt.timedelta(hours=2)),
            )
    return ids


@pytest.mark.timeout(150)
def test_the_standby_takes_over_and_the_mocks_never_stop(
    fresh_mosquitto, pg_database: str, tmp_path: Path
) -> None:
    broker = fresh_mosquitto()
    settings = dict(
        db_url=pg_database,
        replica=1,
        leader_poll_seconds=1,
        lease_seconds=LEASE_S,
        lease_renew_seconds=RENEW_S,
        offline_grace_seconds=60,  # the agent stays put: this is about the appliance
    )
    for name in ("r0", "r1"):
        (tmp_path / name).mkdir()
    first = serve(tmp_path / "r0", broker.url, **settings).start()
    second = serve(tmp_path / "r1", broker.url, **settings)
    # Replicas share the data dir's secrets that the database relies on: the audit key.
    second.data_dir.mkdir(mode=0o700)
    shutil.copy2(first.data_dir / "audit.key", second.data_dir / "audit.key")
    second.start()
    replicas = [first, second]
    agent = None
    try:
        wait(lambda: sorted(role(a) for a in replicas) == ["leader", "standby"], 20,
             "one leader and one standby", first.proc.log())  # fmt: skip
        leader = next(a for a in replicas if role(a) == "leader")
        standby = second if leader is first else first

        agent_dir = tmp_path / "agent"
        enroll(standby, agent_dir, capacity=100)
        agent = agent_proc(agent_dir).start()
        wait(lambda: online(standby) == 1, 30, "agent online", agent.log())
        standby.api(
            "PUT",
            "/api/v1/templates/rep",
            {
                "transport": {"mqtt": {"url": broker.url, "topic": "rep/{device_id}", "qos": 0}},
                "interval": "1s",
                "payload": {"seq": {"counter": {}}},
            },
        )
        standby.api("PUT", "/api/v1/groups/rep", {"template": "rep", "count": DEVICES})
        with Watcher(broker.host, broker.port, "rep/+").running() as watch:
            standby.api("POST", "/api/v1/groups/rep/start")
            wait(lambda: len(watch.devices_since(0)) == DEVICES, 30, "every device talks")
            time.sleep(2 * RENEW_S)

            leader.proc.kill9()
            killed = time.monotonic()
            wait(lambda: role(standby) == "leader", TAKEOVER_LIMIT_S,
                 "the standby to take over", standby.proc.log())  # fmt: skip
            assert time.monotonic() - killed < TAKEOVER_LIMIT_S
            time.sleep(RUN_AFTER_KILL_S)  # leases run out 4 times over unless renewed
            assert len(watch.devices_since(time.monotonic() - 3)) == DEVICES

            standby.api("POST", "/api/v1/groups/rep/stop")
            wait(lambda: standby.api("GET", "/api/v1/groups/rep")["agents_stopped"] >= 1, 20,
                 "the agent's final report", standby.proc.log())  # fmt: skip
            time.sleep(2)  # the last messages arrive
            received = list(watch.seen)

        per_device: dict[str, list[float]] = defaultdict(list)
        for at, topic, _ in received:
            per_device[topic].append(at)
        # No device ever stopped: not when the leader died, not when its leases ran out.
        assert len(per_device) == DEVICES
        # (A device stopped by an expired lease would be silent for seconds: 6 s leases.)
        assert max(max_gap(times) for times in per_device.values()) < 3.0

        # Usage: every record reached a replica (one lost with the dead replica is sent
        # again by the agent until acknowledged), and it equals the traffic.
        wait(lambda: _journal_empty(agent_dir), 30, "every usage record acknowledged")
        device_seconds = standby.api("GET", "/api/v1/groups/rep")["device_seconds"]
        assert abs(device_seconds - len(received)) <= 0.03 * len(received), (
            device_seconds,
            len(received),
        )

        # The killed replica comes back as a standby; a close on both at once.
        leader.start()
        wait(lambda: role(leader) == "standby", 20, "the old leader back as standby")
        orgs = seed_orgs_with_last_month_usage(standby, pg_database, 5)
        answers: list[dict] = []

        def close(app: Appliance) -> None:
            answers.append(app.api("POST", "/api/v1/invoices/close", {}))

        closers = [threading.Thread(target=close, args=(a,)) for a in replicas]
        for t in closers:
            t.start()
        for t in closers:
            t.join(60)
        assert len(answers) == 2
        with psycopg2.connect(pg_database) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT org_id, COUNT(*) FROM invoice WHERE part = 0 GROUP BY org_id ORDER BY 1"
            )
            assert cur.fetchall() == [(org_id, 1) for org_id in orgs]
            cur.execute("SELECT COUNT(*), COUNT(DISTINCT (org_id, period)) FROM period_close")
            closes, distinct = cur.fetchone()
        assert closes == distinct == sum(a["closed"] for a in answers)
        assert closes >= 2 * len(orgs)  # at least the month of registration and the last
    finally:
        if agent is not None:
            agent.stop()
        for app in replicas:
            app.proc.stop()


def _journal_empty(agent_dir: Path) -> bool:
    import sqlite3

    with sqlite3.connect(agent_dir / "usage-journal.sqlite3") as con:
        return con.execute("SELECT COUNT(*) FROM usage WHERE acked = 0").fetchone()[0] == 0
