"""Prometheus text exposition (format 0.0.4), written by hand: no extra dependency."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from appliance.observability.snapshot import Snapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Sample = tuple[dict[str, str], float]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _family(name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        if labels:
            body = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
            lines.append(f"{name}{{{body}}} {_number(value)}")
        else:
            lines.append(f"{name} {_number(value)}")
    return lines


def render(snap: Snapshot, *, bus_connected: bool) -> str:
    online: dict[str, int] = defaultdict(int)
    known: dict[str, int] = defaultdict(int)
    for a in snap.agents:
        known[a["org"]] += 1
        online[a["org"]] += 1 if a["online"] else 0
    running_groups: dict[str, int] = defaultdict(int)
    for g in snap.groups:
        running_groups[g.org] += 1 if g.state == "running" else 0
        running_groups.setdefault(g.org, 0)

    def per_group(attr: str) -> list[Sample]:
        return [({"org": g.org, "group": g.name}, getattr(g, attr)) for g in snap.groups]

    lateness: list[Sample] = []
    for g in snap.groups:
        for q, p in (("0.5", 50), ("0.99", 99)):
            lateness.append(
                ({"org": g.org, "group": g.name, "quantile": q}, g.lateness.percentile_ms(p))
            )
    out: list[str] = []
    out += _family(
        "mockmock_bus_connected",
        "gauge",
        "1 while the control bus is connected.",
        [({}, 1 if bus_connected else 0)],
    )
    out += _family(
        "mockmock_agents",
        "gauge",
        "Enrolled agents.",
        [({"org": o}, n) for o, n in sorted(known.items())],
    )
    out += _family(
        "mockmock_agents_online",
        "gauge",
        "Agents whose presence is online.",
        [({"org": o}, online[o]) for o in sorted(known)],
    )
    out += _family(
        "mockmock_groups_running",
        "gauge",
        "Groups in the running state.",
        [({"org": o}, n) for o, n in sorted(running_groups.items())],
    )
    out += _family(
        "mockmock_group_mocks", "gauge", "Mocks a group is configured to run.", per_group("count")
    )
    out += _family(
        "mockmock_mocks_running", "gauge", "Mocks the agents report running.", per_group("running")
    )
    out += _family(
        "mockmock_sent_total",
        "counter",
        "Messages sent by a group, all runs.",
        per_group("sent_total"),
    )
    out += _family(
        "mockmock_errors_total",
        "counter",
        "Send errors of a group, all runs.",
        per_group("errors_total"),
    )
    out += _family(
        "mockmock_send_lateness_ms",
        "gauge",
        "Send lateness against schedule in the current run (ms), by quantile.",
        lateness,
    )
    out += _family(
        "mockmock_usage_device_seconds_total",
        "counter",
        "Billable device-seconds of a group, all runs (from acknowledged usage).",
        per_group("device_seconds"),
    )
    return "\n".join(out) + "\n"
