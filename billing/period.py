"""The billed month in the account's time zone, and instants as integer microseconds.

Time arithmetic is done on integer microseconds since the epoch, taken by
subtracting aware datetimes (which never overflows, unlike ``astimezone``), so
unions and clipping are exact and independent of the offsets people write.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_PERIOD = re.compile(r"([0-9]{4})-([0-9]{2})\Z")  # ASCII digits only, unlike \d
# Bounds that keep every conversion inside datetime's range; money outside them is a typo.
FIRST_YEAR = 1970
LAST_YEAR = 9998


def micros(moment: datetime) -> int:
    """Microseconds since 1970-01-01T00:00Z of an aware datetime."""
    return (moment - _EPOCH) // _MICROSECOND


def load_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; ValueError (with a readable reason) when there is none."""
    # "localtime" is whatever the machine says: a bill must not depend on the host.
    if name == "localtime":
        raise ValueError("must be an IANA time zone name such as Asia/Tokyo, not localtime")
    # The published list, not any file ZoneInfo can open: that would admit
    # "right/UTC", whose clock counts leap seconds and shifts every boundary.
    if name not in _known_zones():
        raise ValueError(f"unknown IANA time zone {name!r} (e.g. Asia/Tokyo, UTC)")
    return ZoneInfo(name)


@functools.cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def parse_month(text: str) -> tuple[int, int]:
    """``"2026-10"`` → ``(2026, 10)``; ValueError saying what is wrong."""
    found = _PERIOD.match(text)
    if not found or not 1 <= int(found.group(2)) <= 12:
        raise ValueError(f"must be a month written YYYY-MM, e.g. 2026-10, got {text!r}")
    year = int(found.group(1))
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValueError(f"year must be between {FIRST_YEAR} and {LAST_YEAR}, got {year}")
    return year, int(found.group(2))


@dataclass(frozen=True)
class Period:
    """A calendar month ``[first day 00:00, first day of next month 00:00)`` in ``zone``."""

    year: int
    month: int
    zone: ZoneInfo

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def index(self) -> int:
        """Months since year 0: consecutive months differ by one."""
        return self.year * 12 + self.month - 1

    @property
    def start(self) -> datetime:
        # A midnight skipped by DST (fold=0) resolves to the transition instant,
        # i.e. the first instant of that local day, which is what we want.
        return datetime(self.year, self.month, 1, tzinfo=self.zone)

    @property
    def end(self) -> datetime:
        year, month = divmod(self.index + 1, 12)
        return datetime(year, month + 1, 1, tzinfo=self.zone)

    def month_index_of(self, moment: datetime) -> int:
        """:attr:`index` of the calendar month ``moment`` falls in, in this zone."""
        local = moment.astimezone(self.zone)
        return local.year * 12 + local.month - 1
