"""Cron windows and transitions, and next-send rules: pure, table-driven."""

from __future__ import annotations

import random
import statistics
from datetime import UTC, datetime

import pytest

from agent.timing import Cron, CronError, Windows, next_send, zone

UTC_ = zone(None)


def ts(text: str, tz: str = "UTC") -> float:
    return datetime.fromisoformat(text).replace(tzinfo=zone(tz)).timestamp()


@pytest.mark.parametrize(
    ("expr", "at", "expected"),
    [
        ("* * * * *", "2026-03-04 10:20:00", True),
        ("*/15 * * * *", "2026-03-04 10:45:00", True),
        ("*/15 * * * *", "2026-03-04 10:46:00", False),
        ("0 9-17 * * mon-fri", "2026-03-04 12:00:00", True),  # a Wednesday
        ("0 9-17 * * mon-fri", "2026-03-07 12:00:00", False),  # Saturday
        ("0 9-17 * * mon-fri", "2026-03-04 18:00:00", False),
        ("30 2 1 jan,jul *", "2026-07-01 02:30:00", True),
        ("0 0 * * 7", "2026-03-08 00:00:00", True),  # 7 is Sunday too
        # Day of month and day of week both restricted: either matches (Vixie cron).
        ("0 0 13 * fri", "2026-03-13 00:00:00", True),
        ("0 0 13 * fri", "2026-03-06 00:00:00", True),
        ("0 0 13 * fri", "2026-03-07 00:00:00", False),
        ("*/10 * * * * *", "2026-03-04 10:20:30", True),  # six fields: seconds first
        ("*/10 * * * * *", "2026-03-04 10:20:31", False),
        ("@hourly", "2026-03-04 10:00:00", True),
    ],
)
def test_matches(expr: str, at: str, expected: bool) -> None:
    assert Cron.parse(expr).matches(ts(at), UTC_) is expected


@pytest.mark.parametrize(
    ("expr", "after", "nxt"),
    [
        ("*/5 * * * *", "2026-03-04 10:21:13", "2026-03-04 10:25:00"),
        ("0 0 1 * *", "2026-01-31 12:00:00", "2026-02-01 00:00:00"),
        ("0 0 29 2 *", "2026-03-01 00:00:00", "2028-02-29 00:00:00"),
        ("0 9 * * mon", "2026-03-04 10:00:00", "2026-03-09 09:00:00"),
        ("* * * * * *", "2026-03-04 10:00:00", "2026-03-04 10:00:01"),
    ],
)
def test_next_after(expr: str, after: str, nxt: str) -> None:
    assert Cron.parse(expr).next_after(ts(after), UTC_) == ts(nxt)


def test_next_after_honours_the_time_zone() -> None:
    tokyo = zone("Asia/Tokyo")
    got = Cron.parse("0 9 * * *").next_after(ts("2026-03-04 00:30:00"), tokyo)
    assert got is not None
    assert datetime.fromtimestamp(got, UTC).isoformat() == "2026-03-05T00:00:00+00:00"


def test_impossible_expression_has_no_next() -> None:
    assert Cron.parse("0 0 31 2 *").next_after(ts("2026-01-01 00:00:00"), UTC_) is None


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("* * *", "must have 5 fields"),
        ("61 * * * *", "minute: 61 is outside 0-59"),
        ("* 5-2 * * *", "hour: range '5-2' runs backwards"),
        ("*/0 * * * *", "minute: step '0'"),
        ("* * * foo *", "month: 'foo' is not a number"),
        ("", "must be a cron expression"),
    ],
)
def test_bad_expressions_say_which_field(expr: str, message: str) -> None:
    with pytest.raises(CronError, match=message):
        Cron.parse(expr)


def test_windows_open_only_inside_their_minutes() -> None:
    w = Windows([Cron.parse("0-9 * * * *"), Cron.parse("30 12 * * *")], UTC_)
    assert w.open(ts("2026-03-04 10:05:59"))
    assert not w.open(ts("2026-03-04 10:10:00"))
    assert w.open(ts("2026-03-04 12:30:10"))


def test_fixed_arrivals_keep_their_phase_and_poisson_has_the_same_mean() -> None:
    rng = random.Random(3)
    assert next_send(10.0, 1.0, 0.0, False, rng) == 11.0
    jittered = [next_send(10.0, 1.0, 0.2, False, rng) - 10.0 for _ in range(2000)]
    assert min(jittered) >= 0.8 and max(jittered) <= 1.2
    gaps = [next_send(0.0, 2.0, 0.0, True, rng) for _ in range(20_000)]
    assert statistics.fmean(gaps) == pytest.approx(2.0, rel=0.03)
    # Exponential: the standard deviation equals the mean.
    assert statistics.stdev(gaps) == pytest.approx(2.0, rel=0.05)
