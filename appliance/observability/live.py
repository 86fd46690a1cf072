"""The live feed's payload: a snapshot plus send rates from the agents' counters."""

from __future__ import annotations

from typing import Any

import msgspec

from appliance import auth
from appliance.contract.live import (
    Lateness,
    LiveAgent,
    LiveGroup,
    LiveSnapshot,
    LiveTotals,
)
from appliance.observability.rates import RateWindow
from appliance.observability.snapshot import GroupFigures, Snapshot
from appliance.schedule import clock

FORGET_AFTER_S = 600.0
"""A run with no report for this long is over: its samples go."""


def recheck(token: str) -> auth.Caller:
    """Who the feed's token is now (raises Unauthorized once it is revoked or its user gone).

    Called before every snapshot (each second), so a revoked token or a deleted user
    stops seeing the feed within a snapshot period; its org and role are re-read too
    (a demoted superuser loses ``scope=all``).
    """
    return auth.authenticate(f"Bearer {token}")


def group_rate(g: GroupFigures, rates: RateWindow, now: float) -> float:
    """Sent/s of a group's current run: the sum of its agents' rates; 0 once it stops.

    Feeds ``rates`` with the counters in ``g`` (each agent's latest report). An
    offline agent sends nothing, whatever its last report said.
    """
    total = 0.0
    for c in g.counters:
        key = (g.id, g.run_id, c.agent)
        rates.observe(key, c.at, c.sent)
        if g.state == "running" and c.online:
            total += rates.rate(key, now)
    return round(total, 1)


def snapshot_doc(
    snap: Snapshot, rates: RateWindow, *, bus_connected: bool, now: float | None = None
) -> LiveSnapshot:
    now = clock.now().timestamp() if now is None else now
    rates.forget_before(now - FORGET_AFTER_S)
    groups = [
        LiveGroup(
            org=g.org,
            name=g.name,
            state=g.state,
            count=g.count,
            run_id=g.run_id,
            running=g.running,
            sent=g.sent,
            errors=g.errors,
            sent_per_s=group_rate(g, rates, now),
            lateness_ms=Lateness(
                p50=g.lateness.percentile_ms(50), p99=g.lateness.percentile_ms(99)
            ),
        )
        for g in snap.groups
    ]
    running = [g for g in groups if g.state == "running"]
    return LiveSnapshot(
        at=snap.at,
        bus_connected=bus_connected,
        rate_window_s=rates.window_s,
        agents=[msgspec.convert(a, LiveAgent) for a in snap.agents],
        groups=groups,
        totals=LiveTotals(
            agents_online=sum(1 for a in snap.agents if a["online"]),
            groups_running=len(running),
            mocks_running=sum(g.running for g in running),
            sent=sum(g.sent for g in groups),
            errors=sum(g.errors for g in groups),
            sent_per_s=round(sum(g.sent_per_s for g in groups), 1),
        ),
    )


def payload(snap: Snapshot, rates: RateWindow, *, bus_connected: bool) -> dict[str, Any]:
    """The snapshot as the JSON the feed sends (see ``appliance.contract.live``)."""
    return msgspec.to_builtins(snapshot_doc(snap, rates, bus_connected=bus_connected))
