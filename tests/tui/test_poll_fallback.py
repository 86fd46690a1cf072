"""Without the live feed the TUI polls the REST API: its documents become the feed's shapes."""

from __future__ import annotations

from appliance.contract.live import Lateness
from tests.tui import fixed_data as data
from tui.client import live_agent, live_group


def test_a_polled_agent_keeps_its_figures() -> None:
    a = live_agent(data.AGENTS[1])
    assert (a.agent_id, a.hostname, a.online, a.assigned, a.capacity) == (
        "a0002cafe",
        "pi-lab-2",
        True,
        200,
        1000,
    )
    assert (a.cpu_percent, a.rss_mb, a.org) == (12.0, 42.5, "")


def test_a_polled_group_takes_the_measured_rate_and_drops_the_max_lateness() -> None:
    g = live_group(data.GROUPS[1], 12.5)
    assert (g.name, g.state, g.count, g.running, g.sent, g.errors) == (
        "door-sensors",
        "running",
        200,
        200,
        200000,
        7,
    )
    assert g.sent_per_s == 12.5 and g.lateness_ms == Lateness(p50=0.8, p99=5.3)
