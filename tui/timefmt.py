"""Instants for people: one time zone per org, named on every time shown (pure).

The API gives ISO 8601 instants with an offset; the TUI shows them in the org's
billing time zone, to the minute (or second), with the zone's abbreviation, and
``-`` for an instant that is not there. Never microseconds, never ``None``.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MISSING = "-"


class OrgTime:
    def __init__(self, timezone: str = "UTC") -> None:
        try:
            self.zone = ZoneInfo(timezone)
            self.name = timezone
        except (ZoneInfoNotFoundError, ValueError):
            self.zone, self.name = ZoneInfo("UTC"), "UTC"

    def abbreviation(self, when: dt.datetime | None = None) -> str:
        """``JST``; zones without a letter abbreviation (``+09``) go by their IANA name."""
        local = (when or dt.datetime.now(dt.UTC)).astimezone(self.zone)
        abbr = local.tzname() or ""
        return abbr if abbr[:1].isalpha() else self.name

    def local(self, value: str | dt.datetime | None) -> dt.datetime | None:
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)  # the API's naive instants are UTC
        return value.astimezone(self.zone)

    def at(self, value: str | dt.datetime | None, *, seconds: bool = False) -> str:
        """``2026-11-25 22:13 JST`` (or with seconds); ``-`` when there is no instant."""
        local = self.local(value)
        if local is None:
            return MISSING if value in (None, "") else str(value)
        fmt = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
        return f"{local:{fmt}} {self.abbreviation(local)}"

    def clock(self, value: str | dt.datetime | None) -> str:
        """``22:13:05.123`` (milliseconds, for a message tail): the zone is in the header."""
        local = self.local(value)
        if local is None:
            return MISSING
        return f"{local:%H:%M:%S}.{local.microsecond // 1000:03d}"

    def date(self, value: str | dt.datetime | None) -> str:
        local = self.local(value)
        return MISSING if local is None else f"{local:%Y-%m-%d}"


def age(seconds: float | None) -> str:
    """``just now``, ``12s ago``, ``3m ago``, ``2h ago``."""
    if seconds is None:
        return "no data yet"
    s = max(0, int(seconds))
    if s < 2:
        return "just now"
    if s < 120:
        return f"{s}s ago"
    if s < 7200:
        return f"{s // 60}m ago"
    return f"{s // 3600}h ago"
