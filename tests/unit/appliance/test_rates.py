"""Send rates come from the agents' counters over a fixed window of their reports."""

from __future__ import annotations

import pytest

from appliance.observability.live import group_rate, snapshot_doc
from appliance.observability.rates import RateWindow
from appliance.observability.snapshot import Counter, GroupFigures, Snapshot


def reports(rate: float, every: float, until: float, start: float = 0.0):
    """(time, counter) of an agent reporting a steady ``rate`` every ``every`` seconds."""
    t, out = start, []
    while t <= until:
        out.append((t, round(rate * (t - start))))
        t += every
    return out


def test_100_devices_at_5_per_s_read_every_second_is_500_not_600() -> None:
    # The reported bug: reports every 2 s, the feed reading every 1 s; dividing by
    # the time between reads gave ~600/s. Each read here sees the latest report.
    w = RateWindow(10.0)
    seen = []
    history = reports(500, 2.0, 40)
    for now in range(41):
        latest = [r for r in history if r[0] <= now][-1]
        w.observe("g", *latest)
        if now >= 2:
            seen.append(w.rate("g", now))
    assert seen == [500.0] * len(seen)


@pytest.mark.parametrize(
    ("rate", "every", "window"),
    [(50, 2.0, 10.0), (1, 2.0, 10.0), (12345, 1.0, 5.0), (7, 3.0, 10.0)],
)
def test_a_steady_rate_reads_exactly(rate: float, every: float, window: float) -> None:
    w = RateWindow(window)
    for t, c in reports(rate, every, 60):
        w.observe("g", t, c)
        assert w.rate("g", t) in (0.0, pytest.approx(rate, abs=0.5))
    assert w.rate("g", 60) == pytest.approx(rate, abs=0.5)


def test_the_window_is_the_span_of_the_reports_it_keeps() -> None:
    w = RateWindow(10.0)
    for t, c in [(0, 0), (2, 100), (4, 200), (6, 300), (8, 400), (10, 500), (12, 1100)]:
        w.observe("g", t, c)
    # Kept: 2 .. 12 (10 s): (1100 - 100) / 10.
    assert w.rate("g", 12) == 100.0


def test_reading_the_same_report_twice_changes_nothing() -> None:
    w = RateWindow(10.0)
    w.observe("g", 0, 0)
    w.observe("g", 2, 200)
    w.observe("g", 2, 200)
    w.observe("g", 1, 50)  # older than the newest: ignored
    assert w.rate("g", 2) == 100.0


def test_one_report_is_no_rate_yet() -> None:
    w = RateWindow(10.0)
    w.observe("g", 5, 1000)
    assert w.rate("g", 5) == 0.0
    assert w.rate("unknown", 5) == 0.0


def test_a_counter_that_goes_down_starts_a_new_series() -> None:
    w = RateWindow(10.0)
    for t, c in [(0, 0), (2, 1000), (4, 2000)]:
        w.observe("g", t, c)
    w.observe("g", 6, 10)  # the reporter restarted from zero
    assert w.rate("g", 6) == 0.0
    w.observe("g", 8, 210)
    assert w.rate("g", 8) == 100.0


def test_reports_that_stop_read_zero_after_the_window() -> None:
    w = RateWindow(10.0)
    for t, c in reports(100, 2.0, 20):
        w.observe("g", t, c)
    assert w.rate("g", 25) == 100.0
    assert w.rate("g", 31) == 0.0


def test_old_series_are_forgotten() -> None:
    w = RateWindow(10.0)
    w.observe("old", 0, 0)
    w.observe("new", 100, 0)
    w.forget_before(50)
    assert len(w) == 1


def figures(state: str, counters: list[Counter]) -> GroupFigures:
    return GroupFigures(
        org="demo", name="lab", state=state, count=100, run_id=1, id=7, counters=counters
    )


def test_a_group_sums_its_agents_and_ignores_an_offline_one() -> None:
    w = RateWindow(10.0)
    for t in (0, 2, 4):
        group_rate(
            figures(
                "running",
                [
                    Counter(agent=1, at=t, sent=300 * t, online=True),
                    Counter(agent=2, at=t + 0.5, sent=200 * t, online=True),
                    Counter(agent=3, at=t, sent=1000 * t, online=False),
                ],
            ),
            w,
            now=t + 0.5,
        )
    g = figures("running", [Counter(agent=1, at=4, sent=1200, online=True)])
    assert group_rate(g, w, now=4.5) == 300.0
    both = [
        Counter(agent=1, at=4, sent=1200, online=True),
        Counter(agent=2, at=4.5, sent=800, online=True),
    ]
    assert group_rate(figures("running", both), w, now=4.5) == 500.0


def test_a_stopped_group_reads_zero_at_once() -> None:
    w = RateWindow(10.0)
    for t in (0, 2, 4):
        group_rate(figures("running", [Counter(1, t, 500 * t, True)]), w, now=t)
    assert group_rate(figures("running", [Counter(1, 4, 2000, True)]), w, now=4) == 500.0
    assert group_rate(figures("stopped", [Counter(1, 4, 2000, True)]), w, now=4) == 0.0


def test_the_feed_document_carries_rates_and_totals() -> None:
    w = RateWindow(10.0)
    doc = None
    for t in (0, 2, 4):
        snap = Snapshot(
            at="2026-12-01T00:00:00+00:00",
            agents=[{"agent_id": "a1", "org": "demo", "online": True}],
            groups=[figures("running", [Counter(1, t, 250 * t, True)])],
        )
        doc = snapshot_doc(snap, w, bus_connected=True, now=t)
    assert doc is not None
    assert doc.groups[0].sent_per_s == 250.0
    assert doc.totals.sent_per_s == 250.0 and doc.totals.agents_online == 1
    assert doc.rate_window_s == 10.0
