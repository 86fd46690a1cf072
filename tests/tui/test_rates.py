"""A group's sent/s on screen is its counter's rise over the window, as the appliance computes it.

The appliance's own rate code (appliance/observability) turns known counters into
the live feed's snapshots; the TUI shows exactly that rise divided by the time
between the reports, and 0 from the first snapshot after the group stops.
"""

from __future__ import annotations

from appliance.contract.groups import Group
from appliance.observability.live import snapshot_doc
from appliance.observability.rates import RateWindow
from appliance.observability.snapshot import Counter, GroupFigures, Snapshot
from tests.tui.conftest import screen_text
from tui.app import MockmockApp
from tui.screens.groups import GroupsScreen
from tui.screens.live import LiveScreen

WINDOW = 10.0


def snapshot(t: float, sent: dict[int, int], state: str = "running") -> Snapshot:
    """Group ``lab`` as two agents reported it at time ``t``: agent → its counter."""
    return Snapshot(
        at="2026-12-01T00:00:00+00:00",
        agents=[{"agent_id": f"a{n}", "online": True} for n in sent],
        groups=[
            GroupFigures(
                org="demo",
                name="lab",
                state=state,
                count=100,
                run_id=1,
                id=1,
                running=100 if state == "running" else 0,
                sent=sum(sent.values()),
                counters=[Counter(agent=n, at=t, sent=c, online=True) for n, c in sent.items()],
            )
        ],
    )


async def test_the_rate_on_screen_is_the_counter_delta_over_the_window() -> None:
    app = MockmockApp(None, role="operator", start="groups", clock=lambda: 0.0)
    rates = RateWindow(WINDOW)
    # Two agents, reports every 2 s: 300/s and 49.5/s (99 per report).
    history = [(t, {1: 300 * t, 2: 99 * (t // 2)}) for t in range(0, 31, 2)]
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, GroupsScreen)
        screen.show_groups([Group(name="lab", template="t", run_id=1, count=100)])
        for t, sent in history:
            # The feed reads twice per report (every second): the second read is a repeat.
            for read in (t, t + 1):
                app.model.apply(
                    snapshot_doc(snapshot(t, sent), rates, bus_connected=True, now=read), 0.0
                )
                app.live_updated()
        await pilot.pause()
        (t0, first), (t1, last) = history[-6], history[-1]  # the reports WINDOW apart
        expected = (sum(last.values()) - sum(first.values())) / (t1 - t0)
        assert t1 - t0 == WINDOW and expected == 349.5
        assert screen.rate_of("lab") == expected
        assert any("349.5" in line for line in screen_text(app))

        app.model.apply(
            snapshot_doc(snapshot(31, last, state="stopped"), rates, bus_connected=True, now=31),
            0.0,
        )
        app.live_updated()
        await pilot.pause()
        assert screen.rate_of("lab") == 0.0

        await pilot.press("4")
        assert isinstance(app.screen, LiveScreen)
        await pilot.pause()
        assert any("sent/s 0.0" in line for line in screen_text(app))
