"""CI gates of ``mockmock run``: pure checks over a report, and their JUnit XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from appliance import gates


def group(**over: object) -> dict:
    g = {
        "sent": 1000,
        "errors": 0,
        "complete": True,
        "last_errors": [],
        "ready_s": 1.5,
        "lateness_ms": {"p50": 0.4, "p99": 3.0, "max": 9.0},
        "verify": {
            "received": 995,
            "lost": 5,
            "duplicates": 0,
            "reordered": 0,
            "malformed": 0,
            "loss_rate": 0.005,
            "latency_ms": {"p50": 1.0, "p99": 40.0, "max": 90.0},
        },
    }
    g.update(over)
    return g


@pytest.mark.parametrize(
    ("text", "value"), [("0.1%", 0.001), ("0.001", 0.001), ("5 %", 0.05), ("0", 0.0)]
)
def test_parse_rate(text: str, value: float) -> None:
    assert gates.parse_rate(text, "--max-loss") == pytest.approx(value)


@pytest.mark.parametrize("text", ["lots", "-1%", "150%", "2"])
def test_parse_rate_refuses(text: str) -> None:
    with pytest.raises(ValueError, match=r"^--max-loss: "):
        gates.parse_rate(text, "--max-loss")


def test_each_gate_passes_or_fails_by_name() -> None:
    report = {"groups": {"a": group(), "b": group(verify=None, errors=30, sent=970)}}
    limits = gates.Limits(max_error_rate=0.01, max_loss=0.001, max_p99_latency_ms=50)
    lines = gates.failures(gates.checks(report, limits))
    assert lines == [
        "gate max-loss: group a: lost 5 (0.5%; limit 0.1%)",
        "gate max-error-rate: group b: 30 errors of 1000 sends (3%; limit 1%)",
        "gate max-loss: group b: needs verify: true on the group's template",
        "gate max-p99-latency: group b: needs verify: true on the group's template",
    ]
    assert gates.failures(gates.checks(report, gates.Limits(max_error_rate=0.05))) == []


def test_latency_and_lateness_gates() -> None:
    report = {"groups": {"a": group()}}
    assert gates.failures(gates.checks(report, gates.Limits(max_p99_latency_ms=40))) == []
    assert gates.failures(gates.checks(report, gates.Limits(max_p99_latency_ms=39.9))) == [
        "gate max-p99-latency: group a: end-to-end p99 40 ms (limit 39.9 ms)"
    ]
    assert gates.failures(gates.checks(report, gates.Limits(max_p99_lateness_ms=2))) == [
        "gate max-p99-lateness: group a: send lateness p99 3 ms (limit 2 ms)"
    ]


def test_not_ready_nothing_sent_incomplete() -> None:
    report = {
        "groups": {
            "a": group(sent=0, ready_s=None, complete=False, last_errors=["connect refused"])
        }
    }
    assert gates.failures(gates.checks(report, gates.Limits())) == [
        "gate sent: group a: sent 0 (connect refused)",
        "gate complete: group a: not every agent reported its final counts",
        "gate ready: group a: not every device was connected and subscribed before the window",
    ]


def test_junit_has_one_case_per_group_and_gate(tmp_path: Path) -> None:
    report = {"groups": {"a": group(), "b": group()}}
    checks = gates.checks(report, gates.Limits(max_loss=0.001))
    path = tmp_path / "junit.xml"
    gates.junit(checks, duration_s=30, path=path)
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites" and root.get("failures") == "2"
    cases = [(c.get("classname"), c.get("name")) for c in root.iter("testcase")]
    gates_each = ["sent", "complete", "ready", "max-error-rate", "max-loss"]
    assert cases == [(f"mockmock.{g}", n) for g in "ab" for n in gates_each]
    failed = [c for c in root.iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["max-loss", "max-loss"]
    assert failed[0].find("failure").get("message") == "lost 5 (0.5%; limit 0.1%)"
