"""The behaviour figures of a group's report, as JSON: one shape for every report.

``mockmock-agent bench --json``, ``GET /api/v1/groups`` and ``mockmock run
--report`` all show what the engine kept of a group — faults injected by kind,
statuses (devices now, time and sends in each, transitions), commands
(received, answered ok / with an error) and, with ``verify``, what the group's
subscriber saw — rendered here from a :class:`wire.GroupReport`, which the
appliance first merges across agents (``GroupReport.merge_behaviour``).
"""

from __future__ import annotations

from typing import Any

from agent import wire


def latency_ms(hist: wire.Histogram) -> dict[str, float]:
    return {
        "p50": hist.percentile_ms(50),
        "p99": hist.percentile_ms(99),
        "max": round(hist.max_us / 1000, 3),
    }


def behaviour(rep: wire.GroupReport) -> dict[str, Any]:
    """``faults``, ``statuses``, ``transitions``, ``commands`` and ``verify`` (or None)."""
    names = list(dict.fromkeys([*rep.statuses, *rep.status_seconds, *rep.status_sends]))
    out: dict[str, Any] = {
        "faults": dict(sorted(rep.faults.items())),
        "statuses": {
            n: {
                "devices": rep.statuses.get(n, 0),
                "seconds": round(rep.status_seconds.get(n, 0.0), 3),
                "sends": rep.status_sends.get(n, 0),
            }
            for n in names
        },
        "transitions": {"total": rep.transitions, "by": dict(sorted(rep.moves.items()))},
        "commands": {
            "received": rep.commands,
            "replied_ok": rep.replies - rep.replies_error,
            "replied_error": rep.replies_error,
        },
        "reconnects": rep.reconnects,
        "skipped": rep.skipped,
        "verify": None,
    }
    v = rep.verify
    if v is not None:
        # What was sent: every distinct message that arrived (readable or not) and the lost.
        expected = v.received - v.duplicates + v.malformed + v.lost
        out["verify"] = {
            "received": v.received,
            "lost": v.lost,
            "duplicates": v.duplicates,
            "reordered": v.reordered,
            "malformed": v.malformed,
            "loss_rate": round(v.lost / expected, 6) if expected > 0 else 0.0,
            "latency_ms": latency_ms(v.latency),
        }
    return out
