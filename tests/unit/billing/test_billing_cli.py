"""``billing quote``: invoice JSON on stdout, or one line on stderr and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from billing.cli import EXIT_BAD_INPUT, billing
from tests.unit.billing.factories import raw, scenario, use

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "deploy" / "examples"
UNKNOWN_TIER = "on_demand[1].tier: unknown On-Demand tier 'cn30' (catalog has: cn10, cn20)"


def run(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(billing, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def bad_tier(tmp_path: Path) -> Path:
    path = tmp_path / "scenario.json"
    on_demand = [use("cn10", "2026-10-01T00:00:00Z", "2026-10-01T01:00:00Z")]
    on_demand.append(use("cn30", "2026-10-02T00:00:00Z", "2026-10-02T01:00:00Z"))
    path.write_bytes(raw(scenario(on_demand=on_demand)))
    return path


def test_quote_prints_the_example_invoice() -> None:
    code, out, err = run("quote", str(EXAMPLES / "quote-scenario.json"))
    assert (code, err) == (0, "")
    invoice = json.loads(out)
    # cn10: 120 (10-01 00:00-02:00) + 120 (10-05) + 180 (10-12, two runs overlapping
    # 02:30-03:20) = 420 min → 840; cn100: 2:45:30 → 166 min * 900/60 = 2490;
    # flat100-7d starts 10-26 → 50000 (flat10-30d began in September: nothing).
    assert [(line["item"], line["amount"]) for line in invoice["lines"]] == [
        ("cn10", 840),
        ("cn100", 2490),
        ("flat100-7d", 50000),
    ]
    # 53330 - 20 % of flat 10000 - 500 = 42830; credit 2000 → 40830; tax 4083;
    # + 30 carried from an earlier month = 44943.
    assert [d["code"] for d in invoice["discounts"]] == ["LOADTEST20", "THANKS500"]
    assert [n["reason"] for n in invoice["not_applied"]] == ["already_used", "currency_mismatch"]
    assert (invoice["net"], invoice["tax"], invoice["total"]) == (40830, 4083, 44943)
    assert (invoice["status"], invoice["carried_forward"]) == ("chargeable", 0)


def test_quote_prints_the_usd_example_invoice() -> None:
    code, out, _ = run("quote", "--compact", str(EXAMPLES / "quote-scenario-usd.json"))
    invoice = json.loads(out)
    # 22:00 EST → 04:00 EDT is 5 real hours (DST night): 300 min * 150/60 = 750 cents;
    # + 29900 = 30650; EDGE15: 15 % of 750 = 112.5 → 113; net 30537;
    # tax floor(30537 * 8.875 / 100 = 2710.15875) = 2710; total 33247 = $332.47.
    assert code == 0
    assert out.count("\n") == 1  # --compact: one line
    assert (invoice["subtotal"], invoice["net"], invoice["tax"]) == (30650, 30537, 2710)
    assert (invoice["total"], invoice["tax_rate"]) == (33247, 8.875)


def test_quote_reads_standard_input() -> None:
    code, out, _ = run("quote", "-", stdin=raw(scenario(carried_forward=60)))
    assert code == 0
    assert json.loads(out)["total"] == 60


def test_bad_field_is_one_line_naming_it_and_exit_2(bad_tier: Path) -> None:
    code, out, err = run("quote", str(bad_tier))
    assert (code, out) == (EXIT_BAD_INPUT, "")
    assert err == f"{bad_tier}: {UNKNOWN_TIER}\n"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot read: No such file or directory"),
        (b"{not json", "invalid JSON at line 1, column 2: object keys must be strings"),
        (b'{"currency": "JPY"}', "period: is required"),
        # A newline inside a user-supplied name must not break the one-line rule.
        (
            raw(scenario(on_demand=[use("a\nb", "2026-10-01T00:00:00Z", "2026-10-01T01:00:00Z")])),
            "on_demand[0].tier: unknown On-Demand tier 'a\\nb' (catalog has: cn10, cn20)",
        ),
    ],
)
def test_unusable_files_are_one_line_and_exit_2(
    tmp_path: Path, content: bytes | None, problem: str
) -> None:
    path = tmp_path / "s.json"
    if content is not None:
        path.write_bytes(content)
    code, out, err = run("quote", str(path))
    assert (code, out, err) == (EXIT_BAD_INPUT, "", f"{path}: {problem}\n")


def test_a_real_process_exits_2_with_one_line_and_no_traceback(bad_tier: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "billing.cli", "quote", str(bad_tier)],
        cwd=ROOT,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == b""
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1
    assert lines[0].endswith(
        ": on_demand[1].tier: unknown On-Demand tier 'cn30' (catalog has: cn10, cn20)"
    )


def test_a_real_process_prints_the_invoice() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "billing.cli", "quote", str(EXAMPLES / "quote-scenario.json")],
        cwd=ROOT,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, b"")
    assert json.loads(done.stdout)["total"] == 44943
