"""The live feed's payload: a snapshot plus send rates from the last few seconds."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from appliance import auth
from appliance.observability.snapshot import Snapshot

RATE_WINDOW_S = 5.0


def recheck(token: str) -> auth.Caller:
    """Who the feed's token is now (raises Unauthorized once it is revoked or its user gone).

    Called before every snapshot (each second), so a revoked token or a deleted user
    stops seeing the feed within a snapshot period; its org and role are re-read too
    (a demoted superuser loses ``scope=all``).
    """
    return auth.authenticate(f"Bearer {token}")


class RateMeter:
    """Messages per second per group over a sliding window of counter samples."""

    def __init__(self, window_s: float = RATE_WINDOW_S) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, dict[str, int]]] = deque()

    def rates(self, totals: dict[str, int], now: float | None = None) -> dict[str, float]:
        now = time.monotonic() if now is None else now
        self._samples.append((now, dict(totals)))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window_s:
            self._samples.popleft()
        t0, first = self._samples[0]
        span = now - t0
        if span <= 0:
            return {k: 0.0 for k in totals}
        # A counter that went down (a group deleted and re-made) restarts from 0.
        return {k: round(max(0, v - first.get(k, v)) / span, 1) for k, v in totals.items()}


def payload(snap: Snapshot, meter: RateMeter, *, bus_connected: bool) -> dict[str, Any]:
    keys = {f"{g.org}/{g.name}": g for g in snap.groups}
    rates = meter.rates({k: g.sent_total for k, g in keys.items()})
    groups = [
        {
            "org": g.org,
            "name": g.name,
            "state": g.state,
            "count": g.count,
            "run_id": g.run_id,
            "running": g.running,
            "sent": g.sent,
            "errors": g.errors,
            "sent_per_s": rates.get(k, 0.0),
            "lateness_ms": {
                "p50": g.lateness.percentile_ms(50),
                "p99": g.lateness.percentile_ms(99),
            },
        }
        for k, g in keys.items()
    ]
    running = [g for g in groups if g["state"] == "running"]
    return {
        "at": snap.at,
        "bus_connected": bus_connected,
        "agents": snap.agents,
        "groups": groups,
        "totals": {
            "agents_online": sum(1 for a in snap.agents if a["online"]),
            "groups_running": len(running),
            "mocks_running": sum(g["running"] for g in running),
            "sent": sum(g["sent"] for g in groups),
            "errors": sum(g["errors"] for g in groups),
            "sent_per_s": round(sum(g["sent_per_s"] for g in groups), 1),
        },
    }
