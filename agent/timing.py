"""Send timing: cron expressions (windows, timed transitions) and next-send rules.

Pure and small on purpose: the agent must stay light on a board, so cron is a
tiny matcher here rather than APScheduler. Five fields (minute hour day month
weekday) as in crontab(5), or six with a leading seconds field (Quartz-style)
for sub-minute schedules; names (``jan``, ``mon``), ranges, lists and steps
are accepted, and day-of-month/day-of-week combine with OR when both are
restricted, as Vixie cron does.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# (name, low, high, names) per field, seconds first.
_FIELDS = [
    ("second", 0, 59, None),
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day", 1, 31, None),
    ("month", 1, 12, _MONTHS),
    ("weekday", 0, 7, _DAYS),
]
# Search at most this far ahead for the next match (covers Feb 29 and leap-year rules).
_HORIZON_DAYS = 366 * 5


class CronError(ValueError):
    """A cron expression that does not parse; the message says which field."""


def _value(text: str, name: str, lo: int, hi: int, names: list[str] | None) -> int:
    t = text.lower()
    if names and t in names:
        return names.index(t) + (1 if name == "month" else 0)
    if not t.isdigit():
        raise CronError(f"{name}: {text!r} is not a number")
    v = int(t)
    if not lo <= v <= hi:
        raise CronError(f"{name}: {v} is outside {lo}-{hi}")
    return v


def _field(text: str, name: str, lo: int, hi: int, names: list[str] | None) -> frozenset[int]:
    out: set[int] = set()
    for part in text.split(","):
        rng, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{name}: step {step_text!r} must be a positive number")
            step = int(step_text)
        if rng == "*":
            a, b = lo, hi
        elif "-" in rng:
            left, _, right = rng.partition("-")
            a, b = _value(left, name, lo, hi, names), _value(right, name, lo, hi, names)
            if b < a:
                raise CronError(f"{name}: range {rng!r} runs backwards")
        else:
            a = _value(rng, name, lo, hi, names)
            b = hi if step_text else a
        out.update(range(a, b + 1, step))
    if name == "weekday" and 7 in out:  # 7 is Sunday too
        out.discard(7)
        out.add(0)
    return frozenset(out)


@dataclass(frozen=True)
class Cron:
    """One parsed expression; ``matches`` and ``next_after`` in a given time zone."""

    text: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    day_any: bool
    weekday_any: bool
    has_seconds: bool = False  # six fields given

    @classmethod
    def parse(cls, text: str) -> Cron:
        if not isinstance(text, str) or not text.strip():
            raise CronError("must be a cron expression like '*/5 * * * *'")
        expr = _MACROS.get(text.strip().lower(), text.strip())
        parts = expr.split()
        six = len(parts) == 6
        if len(parts) == 5:
            parts = ["0", *parts]
        elif len(parts) != 6:
            raise CronError(
                f"must have 5 fields (minute hour day month weekday) or 6 "
                f"(with seconds first), got {len(parts)}"
            )
        sets = [_field(p, *spec) for p, spec in zip(parts, _FIELDS, strict=True)]
        return cls(
            text=text,
            seconds=sets[0],
            minutes=sets[1],
            hours=sets[2],
            days=sets[3],
            months=sets[4],
            weekdays=sets[5],
            day_any=parts[3] == "*",
            weekday_any=parts[5] == "*",
            has_seconds=six,
        )

    def _day_ok(self, d: datetime) -> bool:
        if d.month not in self.months:
            return False
        dom = d.day in self.days
        dow = (d.isoweekday() % 7) in self.weekdays
        if self.day_any or self.weekday_any:
            return dom and dow
        return dom or dow

    def matches_local(self, d: datetime, *, whole_minute: bool = False) -> bool:
        """``whole_minute``: a five-field expression matches its entire minute (what a
        window means), not only second 0 (when a transition fires)."""
        second_ok = (whole_minute and not self.has_seconds) or d.second in self.seconds
        return self._day_ok(d) and d.hour in self.hours and d.minute in self.minutes and second_ok

    def matches(self, epoch_s: float, tz: tzinfo) -> bool:
        return self.matches_local(datetime.fromtimestamp(int(epoch_s), tz))

    def next_after(self, epoch_s: float, tz: tzinfo) -> float | None:
        """The first matching second strictly after ``epoch_s``; None if none in 5 years."""
        d = datetime.fromtimestamp(int(epoch_s), tz).replace(tzinfo=None) + timedelta(seconds=1)
        end = d + timedelta(days=_HORIZON_DAYS)
        while d < end:
            if not self._day_ok(d):
                d = (d + timedelta(days=1)).replace(hour=0, minute=0, second=0)
                continue
            if d.hour not in self.hours:
                d = (d + timedelta(hours=1)).replace(minute=0, second=0)
                continue
            if d.minute not in self.minutes:
                d = (d + timedelta(minutes=1)).replace(second=0)
                continue
            if d.second not in self.seconds:
                d += timedelta(seconds=1)
                continue
            t = d.replace(tzinfo=tz).timestamp()
            if t > epoch_s:
                return t
            d += timedelta(seconds=1)  # a DST fold mapped us backwards
        return None


def zone(name: str | None) -> tzinfo:
    """An IANA zone (tzdata ships with the agent); UTC when not given."""
    return ZoneInfo(name or "UTC")


class Windows:
    """Sending windows: open while any cron expression matches the current minute
    (or second, for six-field expressions). Cached per second because the engine
    asks for every send."""

    __slots__ = ("_at", "_open", "crons", "tz")

    def __init__(self, crons: list[Cron], tz: tzinfo) -> None:
        self.crons = crons
        self.tz = tz
        self._at = -1
        self._open = True

    def open(self, now: float) -> bool:
        sec = int(now)
        if sec != self._at:
            d = datetime.fromtimestamp(sec, self.tz)
            self._open = any(c.matches_local(d, whole_minute=True) for c in self.crons)
            self._at = sec
        return self._open


def next_send(
    due: float, interval: float, jitter: float, poisson: bool, rng: random.Random
) -> float:
    """The next due time after a send that was due at ``due``.

    Fixed arrivals keep their phase (due + interval), so lateness never
    accumulates; Poisson arrivals draw exponential gaps with the same mean.
    """
    if poisson:
        return due + rng.expovariate(1.0 / interval)
    if jitter:
        return due + interval + rng.uniform(-jitter, jitter)
    return due + interval
