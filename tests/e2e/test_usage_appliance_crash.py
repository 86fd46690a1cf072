"""Usage is stored exactly once across kill -9 of the appliance *during* ingest.

Three enrolled agents cut a usage record every 100 ms (~30 records/s into one
appliance), so the appliance is always in the middle of ingesting when it is
killed with SIGKILL — twice. After it comes back the agents replay what was not
acknowledged; in the end the database holds every journal record of every agent
once, with exactly the journal's device-milliseconds.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from tests.e2e.fleet import agent_id, agent_proc, enroll, online, serve, wait
from tests.e2e.test_usage_crash import journal_state

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]


def stored(db_path: Path) -> dict[str, tuple[int, int, int]]:
    """agent id -> (records, distinct seqs, device-ms) as the appliance stored them."""
    con = sqlite3.connect(db_path)
    try:
        rows = con.execute(
            "SELECT a.agent_id, COUNT(*), COUNT(DISTINCT r.seq), "
            "(SELECT COALESCE(SUM(u.device_ms), 0) FROM usage u "
            " JOIN usagerecord r2 ON u.record_id = r2.id WHERE r2.agent_id = a.id) "
            "FROM usagerecord r JOIN agent a ON r.agent_id = a.id GROUP BY a.id"
        ).fetchall()
        return {aid: (n, distinct, ms) for aid, n, distinct, ms in rows}
    finally:
        con.close()


@pytest.mark.timeout(240)
def test_kill9_appliance_during_ingest_stores_every_record_once(mosquitto, tmp_path: Path) -> None:
    app = serve(tmp_path, mosquitto.url).start()
    dirs = [tmp_path / f"agent{i}" for i in range(3)]
    agents = []
    try:
        for d in dirs:
            enroll(app, d, capacity=10)
        agents = [agent_proc(d, "--usage-interval", "0.1").start() for d in dirs]
        wait(lambda: online(app) == 3, 30, "3 agents online", app.proc.log())
        app.api(
            "PUT",
            "/api/v1/templates/ingest",
            {
                "transport": {"mqtt": {"url": mosquitto.url, "topic": "ingest/{device_id}"}},
                "interval": "1s",
                "payload": {"seq": {"counter": {}}},
            },
        )
        app.api("PUT", "/api/v1/groups/ingest", {"template": "ingest", "count": 30})
        app.api("POST", "/api/v1/groups/ingest/start")
        journals = [d / "usage-journal.sqlite3" for d in dirs]

        for _ in range(2):
            marks = [journal_state(j)[0] for j in journals]
            # ingest is flowing: every agent's records are being acknowledged
            wait(
                lambda marks=marks: all(
                    journal_state(j)[1] > m + 10 for j, m in zip(journals, marks, strict=True)
                ),
                30,
                "acks flowing",
                app.proc.log(),
            )
            app.proc.kill9()  # mid-ingest: ~30 records/s are in flight
            time.sleep(1.5)  # the agents journal on, unacknowledged
            app.start()

        app.api("POST", "/api/v1/groups/ingest/stop")

        def settled() -> bool:
            states = [journal_state(j) for j in journals]
            return all(last > 0 and acked == last for last, acked, _ in states)

        wait(settled, 60, "every journal fully acknowledged", app.proc.log())
        time.sleep(1.5)  # no record trickles in after the stop
        assert settled()
    finally:
        for a in agents:
            a.stop()
        app.proc.stop()

    db = stored(app.data_dir / "mockmock.sqlite3")
    for d, j in zip(dirs, journals, strict=True):
        last, acked, journal_ms = journal_state(j)
        records, distinct, device_ms = db[agent_id(d)]
        assert records == distinct == last == acked  # every record, once
        assert device_ms == journal_ms  # every journaled device-ms, once
        assert last > 50  # many small records went through the crashes
