"""Send rates from reported counters over a fixed window (pure: no I/O, no clock).

Agents report cumulative counters every couple of seconds and the appliance notes
when each report arrived. A rate here is a counter's rise between two *reports*
divided by the time between those same two reports. Dividing instead by the time
between two reads of the database (what the live feed did) mixes two clocks: a
5-second window of reads could take in three 2-second reports' worth of sends, so
100 devices at 5 msg/s read ~600/s and a 1 Hz group zig-zagged between 50 and 60.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable

WINDOW_S = 10.0
"""How far back a rate looks: long enough to smooth jitter, short enough to follow a scale."""


class RateWindow:
    """(time, counter) samples per key; ``rate`` is the rise over the last ``window_s``.

    A key is one counter of one reporter (e.g. a group's run on one agent); a
    group's rate is the sum of its keys' rates. Samples with a time already seen
    are the same report read twice and are ignored.
    """

    def __init__(self, window_s: float = WINDOW_S, *, stale_s: float | None = None) -> None:
        if window_s <= 0:
            raise ValueError("window_s: must be > 0")
        self.window_s = window_s
        self.stale_s = window_s if stale_s is None else stale_s
        """A key whose newest sample is older than this reads 0: its reports stopped."""
        self._series: dict[Hashable, deque[tuple[float, int]]] = {}

    def observe(self, key: Hashable, at: float, counter: int) -> None:
        """Note that ``key``'s counter read ``counter`` at ``at`` (seconds)."""
        s = self._series.get(key)
        if s is None:
            s = self._series[key] = deque()
        elif at <= s[-1][0]:
            return  # the same report again, or one older than the newest
        elif counter < s[-1][1]:
            s.clear()  # the counter started again (a restarted reporter): no rise to measure
        s.append((at, counter))
        while len(s) > 2 and at - s[1][0] >= self.window_s:
            s.popleft()

    def rate(self, key: Hashable, now: float) -> float:
        """Counts per second over the window ending at ``key``'s newest sample; 0 without two
        samples, or when the newest is older than ``stale_s`` at ``now``."""
        s = self._series.get(key)
        if s is None or len(s) < 2:
            return 0.0
        (t0, c0), (t1, c1) = s[0], s[-1]
        if now - t1 > self.stale_s or t1 <= t0:
            return 0.0
        return (c1 - c0) / (t1 - t0)

    def forget_before(self, cutoff: float) -> None:
        """Drop every key whose newest sample is older than ``cutoff`` (ended runs)."""
        for key in [k for k, s in self._series.items() if s[-1][0] < cutoff]:
            del self._series[key]

    def __len__(self) -> int:
        return len(self._series)
