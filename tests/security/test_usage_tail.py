"""kill -9 of an agent loses at most a second of usage per device, measured.

An agent cuts a usage record every ``--usage-interval`` seconds; what ran since
the last cut lived only in memory, so a kill -9 lost up to that interval (ten
seconds per device here). The open intervals are now checkpointed to the journal
every second and turned into a record when the agent starts again.

Real processes on a real Mosquitto: the usage the appliance stored is compared
with what an independent subscriber received from the devices (1 msg/s each).
Also here: acknowledged journal rows are pruned by the running agent.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from agent import wire
from agent.journal import JOURNAL_FILE, Journal
from agent.runtime import Agent, AgentConfig
from tests.e2e.fleet import Watcher, agent_proc, enroll, online, serve, wait
from tests.e2e.test_usage_crash import db_usage, journal_state

N = 20  # devices


@pytest.mark.mqtt
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_kill9_loses_at_most_a_second_per_device(mosquitto, tmp_path: Path) -> None:
    app = serve(tmp_path, mosquitto.url).start()
    agent_dir = tmp_path / "agent"
    agent = agent_proc(agent_dir, "--usage-interval", "10")  # a record every 10 s only
    try:
        enroll(app, agent_dir, capacity=N)
        agent.start()
        wait(lambda: online(app) == 1, 30, "agent online", app.proc.log())
        app.api(
            "PUT",
            "/api/v1/templates/tail",
            {
                "transport": {"mqtt": {"url": mosquitto.url, "topic": "tail/{device_id}"}},
                "interval": "1s",
                "payload": {"seq": {"counter": {}}},
            },
        )
        app.api("PUT", "/api/v1/groups/tail", {"template": "tail", "count": N})
        with Watcher(mosquitto.host, mosquitto.port, "tail/+").running() as watch:
            app.api("POST", "/api/v1/groups/tail/start")
            # Well inside the first 10 s: no record has been cut yet when it dies.
            wait(lambda: watch.count_since(0) >= 6 * N, 30, "6 s of traffic", agent.log())
            agent.kill9()
            killed_at = len(watch.seen)
            time.sleep(1.0)
            agent.start()
            wait(
                lambda: watch.count_since(0) >= killed_at + 4 * N,
                30,
                "traffic again after the restart",
                agent.log(),
            )
            app.api("POST", "/api/v1/groups/tail/stop")
            journal = agent_dir / JOURNAL_FILE

            def settled() -> bool:
                last, acked, _ = journal_state(journal)
                return last > 0 and acked == last

            wait(settled, 30, "journal acknowledged", app.proc.log())
            time.sleep(1.5)  # the last messages in flight reach the subscriber
            received = len(watch.seen)
    finally:
        agent.stop()
        app.proc.stop()

    _, _, journal_ms = journal_state(journal)
    _, stored_s = db_usage(app)
    assert stored_s * 1000 == journal_ms  # what the journal holds is what was billed
    # One device, one message a second: device-seconds and messages agree, but for
    # the crash (at most 1 s per device) and each run segment's edges (devices start
    # staggered over their first second: +-0.5 s per device on average).
    lost = received - stored_s
    print(f"received {received} messages, billed {stored_s:.1f} device-s, lost {lost:.1f}")
    assert -N <= lost <= N * 1 + N, f"lost {lost:.1f} device-s of {N} devices in one crash"


def test_the_running_agent_prunes_acknowledged_rows(tmp_path: Path) -> None:
    """Acknowledged records are kept a week for audits, then dropped, by the agent itself."""
    now = [1_000_000.0]
    agent = Agent(
        AgentConfig(agent_id="a1", mqtt_url="mqtt://127.0.0.1:1"),
        tmp_path,
        tick_s=0.01,
        prune_s=3600,
        clock=lambda: now[0],
    )
    line = wire.UsageLine(group_id=1, run_id=1, index_start=0, devices=1, start_ms=0, end_ms=1)
    for _ in range(3):
        agent.journal.append([line])
    agent.journal.ack(2)

    async def tick_for(seconds: float) -> None:
        task = asyncio.create_task(agent._tick_loop())
        await asyncio.sleep(seconds)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(tick_for(0.1))
    assert agent.journal.pending_count() == 1 and agent.journal.total_device_ms() == 3
    now[0] += 8 * 86400  # a week and a day later, still running
    asyncio.run(tick_for(0.1))
    assert agent.journal.total_device_ms() == 1  # the two acknowledged rows are gone
    assert agent.journal.pending_count() == 1  # never an unacknowledged one
    agent.journal.close()
    j = Journal(tmp_path / JOURNAL_FILE)
    assert j.last_seq == 3 and j.acked_seq == 2
    j.close()
