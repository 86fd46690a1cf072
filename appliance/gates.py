"""Gates a CI run of ``mockmock run`` passes or fails, and their JUnit XML.

Pure: a report (the JSON ``mockmock run`` prints) and the limits in, one
:class:`Check` per group and gate out. The exit line names the failing gate;
``--junit`` writes the same checks as one test case each, which Jenkins,
GitLab and GitHub read as test results.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$")


def parse_rate(text: str, option: str) -> float:
    """``0.1%`` or ``0.001``: a share between 0 and 1."""
    m = _PERCENT.match(text)
    if not m:
        raise ValueError(f"{option}: {text!r} is not a share (e.g. 0.1% or 0.001)")
    value = float(m.group(1)) / (100 if m.group(2) else 1)
    if not 0 <= value <= 1:
        raise ValueError(f"{option}: must be between 0 and 1 (0% and 100%), got {text!r}")
    return value


@dataclass(frozen=True)
class Limits:
    max_error_rate: float = 0.0
    max_loss: float | None = None  # share of the verified messages lost
    max_p99_latency_ms: float | None = None  # end to end, from verify
    max_p99_lateness_ms: float | None = None  # send lateness against the schedule


@dataclass(frozen=True)
class Check:
    group: str
    gate: str  # e.g. "max-loss"
    ok: bool
    message: str  # what was measured (and against what)


def _pct(x: float) -> str:
    return f"{x * 100:.3g}%"


def checks(report: dict[str, Any], limits: Limits) -> list[Check]:
    """Every gate of every group, passed or not, in a stable order."""
    out: list[Check] = []
    for name, g in report["groups"].items():
        add = lambda gate, ok, msg, name=name: out.append(Check(name, gate, ok, msg))  # noqa: E731
        add(
            "sent",
            g["sent"] > 0,
            f"sent {g['sent']}"
            + ("" if g["sent"] else f" ({'; '.join(g['last_errors']) or 'no error reported'})"),
        )
        add(
            "complete",
            bool(g["complete"]),
            "every agent reported its final counts"
            if g["complete"]
            else "not every agent reported its final counts",
        )
        if "ready_s" in g:
            ready = g["ready_s"] is not None
            add(
                "ready",
                ready,
                f"every device connected and subscribed after {g['ready_s']:g}s"
                if ready
                else "not every device was connected and subscribed before the window",
            )
        total = g["sent"] + g["errors"]
        rate = g["errors"] / total if total else 0.0
        add(
            "max-error-rate",
            rate <= limits.max_error_rate,
            f"{g['errors']} errors of {total} sends ({_pct(rate)}; limit "
            f"{_pct(limits.max_error_rate)})",
        )
        v = g.get("verify")
        if limits.max_loss is not None:
            if v is None:
                add("max-loss", False, "needs verify: true on the group's template")
            else:
                add(
                    "max-loss",
                    v["loss_rate"] <= limits.max_loss,
                    f"lost {v['lost']} ({_pct(v['loss_rate'])}; limit {_pct(limits.max_loss)})",
                )
        if limits.max_p99_latency_ms is not None:
            if v is None:
                add("max-p99-latency", False, "needs verify: true on the group's template")
            else:
                p99 = v["latency_ms"]["p99"]
                add(
                    "max-p99-latency",
                    p99 <= limits.max_p99_latency_ms,
                    f"end-to-end p99 {p99:g} ms (limit {limits.max_p99_latency_ms:g} ms)",
                )
        if limits.max_p99_lateness_ms is not None:
            p99 = g["lateness_ms"]["p99"]
            add(
                "max-p99-lateness",
                p99 <= limits.max_p99_lateness_ms,
                f"send lateness p99 {p99:g} ms (limit {limits.max_p99_lateness_ms:g} ms)",
            )
    return out


def failures(all_checks: list[Check]) -> list[str]:
    """One line per failed gate: ``gate max-loss: group g: lost 12 (0.52%; limit 0.1%)``."""
    return [f"gate {c.gate}: group {c.group}: {c.message}" for c in all_checks if not c.ok]


def junit(all_checks: list[Check], *, duration_s: float, path: Path) -> None:
    """JUnit XML: one test suite, one test case per group and gate."""
    failed = sum(1 for c in all_checks if not c.ok)
    suite = ET.Element(
        "testsuite",
        name="mockmock run",
        tests=str(len(all_checks)),
        failures=str(failed),
        errors="0",
        time=f"{duration_s:g}",
    )
    for c in all_checks:
        case = ET.SubElement(suite, "testcase", classname=f"mockmock.{c.group}", name=c.gate)
        if c.ok:
            ET.SubElement(case, "system-out").text = c.message
        else:
            ET.SubElement(case, "failure", message=c.message, type=c.gate).text = c.message
    suites = ET.Element("testsuites", tests=str(len(all_checks)), failures=str(failed))
    suites.append(suite)
    ET.indent(suites)
    path.write_bytes(ET.tostring(suites, encoding="utf-8", xml_declaration=True) + b"\n")
