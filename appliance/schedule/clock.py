"""The appliance's notion of "now", which tests can move; the one clock of appliance/.

Every instant the appliance stores or bills by reads :func:`now` / :func:`utcnow`
(entitlement windows, free-tier expiry, intervals, invoices, tokens, audit
timestamps, the database columns' defaults). In production it is the system
clock; a test calls :func:`travel_to` to jump to an instant (time keeps running
from there) or :func:`freeze` to stop it. Listeners (the scheduler) hear about
every jump so they can re-plan the jobs that depend on it.

:func:`system` and :func:`system_seconds` are the machine's own clock, never
moved: for instants another clock compares with its own (an agent's lease end,
APScheduler's run times). No module of appliance/ reads the wall clock other than
through here (``tests/unit/appliance/test_one_clock.py``); monotonic timers for
durations are fine anywhere.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable

_lock = threading.Lock()
_offset = dt.timedelta(0)
_frozen: dt.datetime | None = None
_listeners: list[Callable[[], None]] = []
INPUT_YEARS = (1970, 2999)
"""Instants users may give (queries, flat-window starts)."""


def system() -> dt.datetime:
    """The machine's clock (aware UTC), whatever :func:`travel_to` did."""
    return dt.datetime.now(dt.UTC)


def system_seconds() -> float:
    """The machine's clock in epoch seconds: lease ends and times sent to agents, which
    compare them with their own clocks."""
    return time.time()


def now() -> dt.datetime:
    """The current instant, timezone-aware (UTC)."""
    with _lock:
        frozen, offset = _frozen, _offset
    return frozen if frozen is not None else system() + offset


def utcnow() -> dt.datetime:
    """:func:`now` as the naive UTC the database columns store."""
    return now().replace(tzinfo=None)


def offset() -> dt.timedelta:
    """How far the appliance's clock is ahead of the system clock."""
    return now() - system()


def to_system(instant: dt.datetime) -> dt.datetime:
    """The system-clock instant at which the appliance's clock reads ``instant``."""
    return aware(instant) - offset()


def aware(instant: dt.datetime) -> dt.datetime:
    """Naive datetimes are UTC (the database's convention)."""
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=dt.UTC)


def travel_to(instant: dt.datetime) -> None:
    """Jump so that :func:`now` reads ``instant``; time keeps running from there."""
    global _offset, _frozen
    with _lock:
        _frozen = None
        _offset = aware(instant) - system()
    _notify()


def freeze(instant: dt.datetime | None = None) -> None:
    """Stop the clock at ``instant`` (default: now)."""
    global _frozen
    at = aware(instant) if instant is not None else now()
    with _lock:
        _frozen = at
    _notify()


def reset() -> None:
    """Back to the system clock."""
    global _offset, _frozen
    with _lock:
        _offset, _frozen = dt.timedelta(0), None
    _notify()


def on_change(listener: Callable[[], None]) -> Callable[[], None]:
    """Call ``listener`` after every jump; returns a function that unsubscribes."""
    with _lock:
        _listeners.append(listener)

    def remove() -> None:
        with _lock:
            if listener in _listeners:
                _listeners.remove(listener)

    return remove


def _notify() -> None:
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener()


def parse(text: str | None, field: str) -> dt.datetime | None:
    """An ISO 8601 instant with a UTC offset from user input; a 4xx naming ``field`` if not."""
    from appliance.errors import ApplianceError

    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise ApplianceError(
            f"{field}: {text!r} is not an ISO 8601 time (e.g. 2026-10-20T00:00:00+09:00)"
        ) from None
    if value.tzinfo is None:
        raise ApplianceError(f"{field}: needs a UTC offset (e.g. +09:00 or Z)")
    if not INPUT_YEARS[0] <= value.year <= INPUT_YEARS[1]:
        # Year 9999 plus an offset or a window's days overflows datetime: a 400, not a 500.
        raise ApplianceError(
            f"{field}: the year must be between {INPUT_YEARS[0]} and {INPUT_YEARS[1]}"
        )
    return value
