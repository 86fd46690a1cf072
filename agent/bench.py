"""``mockmock-agent bench``: the engine alone on a scenario, no appliance.

It answers "how much can this board do?": every group of the scenario runs in
this process (one GroupRunner each, exactly as under the agent), connects,
sends for the given duration, and the figures of that window are reported —
messages sent, errors, send lateness against the schedule, CPU and memory.
Connecting is not part of the window: 10,000 TLS handshakes say nothing about
the steady state.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import resource
import time
from collections.abc import Callable
from typing import Any

from agent import wire
from agent.engine import GroupRunner
from agent.errors import AgentError
from agent.limits import check_open_files, raise_open_files_limit
from agent.report import behaviour
from agent.template import Scenario, load_scenario

CONNECT_TIMEOUT_S = 120.0
LEASE_S = 10 * 365 * 86400.0


def scale(scenario: Scenario, devices: int) -> Scenario:
    """Spread ``devices`` over the groups in proportion to their counts (each >= 1)."""
    if devices < len(scenario.groups):
        raise AgentError(f"--devices: need at least {len(scenario.groups)} (one per group)")
    total = sum(g.count for g in scenario.groups)
    shares = [g.count * devices / total for g in scenario.groups]
    counts = [max(1, int(s)) for s in shares]
    # Largest remainders get the devices rounding left over.
    for i in sorted(range(len(shares)), key=lambda i: shares[i] - int(shares[i]), reverse=True):
        if sum(counts) >= devices:
            break
        counts[i] += 1
    groups = [dataclasses.replace(g, count=n) for g, n in zip(scenario.groups, counts, strict=True)]
    return dataclasses.replace(scenario, groups=groups)


def load(path: str, devices: int | None = None) -> Scenario:
    scenario = load_scenario(path)
    return scale(scenario, devices) if devices else scenario


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        return _peak_rss_mb()


def _peak_rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # KiB on Linux


def _lateness(hist: wire.Histogram) -> dict[str, float]:
    return {
        "p50": hist.percentile_ms(50),
        "p99": hist.percentile_ms(99),
        "max": round(hist.max_us / 1000, 3),
    }


def _window(before: dict[int, int], after: wire.Histogram) -> wire.Histogram:
    """The histogram of the sends between two snapshots of a cumulative one."""
    buckets = {i: n - before.get(i, 0) for i, n in after.buckets.items() if n > before.get(i, 0)}
    top = max(buckets, default=0)
    return wire.Histogram(
        buckets=buckets,
        count=sum(buckets.values()),
        max_us=min(after.max_us, int(wire.Histogram.upper(top))),
    )


@dataclasses.dataclass
class _Mark:
    at: float
    cpu: float
    sent: list[int]
    errors: list[int]
    buckets: list[dict[int, int]]


def _mark(runners: list[GroupRunner]) -> _Mark:
    return _Mark(
        at=time.time(),
        cpu=time.process_time(),
        sent=[r.report.sent for r in runners],
        # The engine's count includes the transport's late failures (sender.errors).
        errors=[r.report.errors for r in runners],
        buckets=[dict(r.report.lateness.buckets) for r in runners],
    )


class BenchFailed(AgentError):
    """The run could not start measuring: a group failed or devices did not connect."""


async def _connected(runners: list[GroupRunner], devices: int, timeout_s: float) -> None:
    """Until every group runs and every device is connected; BenchFailed (one line,
    with how many devices made it) when a group fails or the bound passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        failed = [r for r in runners if r.failed]
        if failed:
            r = failed[0]
            raise BenchFailed(
                f"group {r.assignment.group} failed: {r.failed} "
                f"({_count_connected(runners)} of {devices} devices connected)"
            )
        running = all(r.report.state == "running" for r in runners)
        if running and _count_connected(runners) == devices:
            return
        if time.monotonic() > deadline:
            why = next((e for r in runners if (e := getattr(r.sender, "last_error", ""))), "")
            raise BenchFailed(
                f"{_count_connected(runners)} of {devices} devices connected within "
                f"{timeout_s:g}s" + (f" (last error: {why})" if why else "")
            )
        await asyncio.sleep(0.05)


def _count_connected(runners: list[GroupRunner]) -> int:
    return sum(r.connected() for r in runners if r.report.state == "running")


async def run_bench(
    scenario: Scenario,
    duration_s: float,
    *,
    progress: Callable[[str], None] | None = None,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
    settle_s: float = 0.0,
) -> dict[str, Any]:
    """Run every group for ``duration_s`` after all have connected (and ``settle_s``
    more: other benches on the same machine may still be connecting); the report."""
    say = progress or (lambda _: None)
    raise_open_files_limit()
    devices = sum(g.count for g in scenario.groups)
    rss_base = _rss_mb()
    now = time.time()
    runners = []
    for i, g in enumerate(scenario.groups):
        assignment = wire.Assignment(
            group_id=i + 1,
            group=g.name,
            run_id=1,
            template_name=g.template,
            template=scenario.templates[g.template].raw,
            index_start=0,
            index_end=g.count,
            seed=g.seed,
            lease_until=now + LEASE_S,
        )
        runners.append(GroupRunner(assignment))
    # Before the first socket: a run the open-files limit cannot hold is one line now,
    # not a connect phase that retries for ever.
    try:
        check_open_files(sum(r.connections() for r in runners), f"{devices} devices")
    except AgentError as e:
        raise BenchFailed(str(e)) from None
    say(f"connecting {devices} devices in {len(runners)} group(s)")
    t_connect = time.monotonic()
    for r in runners:
        r.start()
    try:
        await _connected(runners, devices, connect_timeout_s)
        connect_s = time.monotonic() - t_connect
        if settle_s > 0:
            say(f"connected in {connect_s:.1f}s; settling for {settle_s:g}s")
            await asyncio.sleep(settle_s)
        say(f"connected in {connect_s:.1f}s; sending for {duration_s:g}s")
        start = _mark(runners)
        await asyncio.sleep(duration_s)
        end = _mark(runners)
        rss = _rss_mb()
    finally:
        await asyncio.gather(*(r.stop("bench done") for r in runners))
    wall = max(end.at - start.at, 1e-9)
    groups = []
    total = wire.Histogram()
    for i, (g, r) in enumerate(zip(scenario.groups, runners, strict=True)):
        hist = _window(start.buckets[i], r.report.lateness)
        total.merge(hist)
        sent = end.sent[i] - start.sent[i]
        groups.append(
            {
                "name": g.name,
                "devices": g.count,
                "sent": sent,
                "sent_per_s": round(sent / wall, 1),
                "errors": end.errors[i] - start.errors[i],
                "lateness_ms": _lateness(hist),
                "last_error": r.report.last_error or getattr(r.sender, "last_error", ""),
                # Behaviour figures since the start (not only the window).
                **behaviour(r.report),
            }
        )
    sent = sum(g["sent"] for g in groups)
    return {
        "sent": sent,
        "duration_s": round(wall, 3),
        "sent_per_s": round(sent / wall, 1),
        "errors": sum(g["errors"] for g in groups),
        "lateness_ms": _lateness(total),
        "rss_mb": round(rss, 1),
        "rss_peak_mb": round(_peak_rss_mb(), 1),
        "rss_baseline_mb": round(rss_base, 1),
        "rss_kb_per_device": round((rss - rss_base) * 1000 / max(devices, 1), 1),
        "cpu_percent": round((end.cpu - start.cpu) * 100 / wall, 1),
        "devices": devices,
        "connect_s": round(connect_s, 2),
        "sent_total": sum(r.report.sent for r in runners),
        "started_at": round(start.at, 3),
        "ended_at": round(end.at, 3),
        "groups": groups,
    }


def format_table(result: dict[str, Any]) -> str:
    """The short human form of a bench result."""
    rows = [("group", "devices", "sent", "sent/s", "errors", "p50 ms", "p99 ms", "max ms")]
    for g in [*result["groups"], {**result, "name": "total"}]:
        lat = g["lateness_ms"]
        rows.append(
            (
                g["name"],
                f"{g['devices']:,}",
                f"{g['sent']:,}",
                f"{g['sent_per_s']:,.0f}",
                f"{g['errors']:,}",
                f"{lat['p50']:.2f}",
                f"{lat['p99']:.2f}",
                f"{lat['max']:.1f}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    lines.append(
        f"{result['duration_s']:g}s after connecting {result['devices']:,} devices in "
        f"{result['connect_s']:g}s; CPU {result['cpu_percent']:g}% of one core; "
        f"RSS {result['rss_mb']:g} MB ({result['rss_kb_per_device']:g} KB per device)"
    )
    for g in result["groups"]:
        if g["errors"] and g["last_error"]:
            lines.append(f"{g['name']}: last error: {g['last_error']}")
    return "\n".join(lines)
