"""Schema-driven fuzzing of the accounts operations alone (users, tokens, /me, orgs, audit,
notices, billing email), with more examples per operation than the whole-API CI run:
every answer conforms to its documented schema, no server error, no open door."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.ports import service_unavailable
from tests.fuzz.run import _unshare_prefix

pytestmark = [pytest.mark.slow]

pytest.importorskip(
    "schemathesis", reason="schemathesis is not installed (it is in the dev dependency group)"
)
PATHS = r"/api/v1/(me|users|tokens|orgs|audit|notices|billing/email)(/|$)"
OPERATIONS = 14


@pytest.mark.timeout(300)
def test_accounts_answers_conform_to_their_schemas(tmp_path: Path) -> None:
    if _unshare_prefix() is None:
        service_unavailable("`unshare -n` is not possible here (needs root or user namespaces)")
    summary = tmp_path / "figures.json"
    done = subprocess.run(
        [
            sys.executable, "-m", "tests.fuzz.run", "--examples", "30", "--paths", PATHS,
            "--json", str(summary), "--work-dir", str(tmp_path / "work"),
        ],
        capture_output=True,
        text=True,
        timeout=290,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert summary.exists(), done.stdout[-4000:] + done.stderr[-4000:]
    figures = json.loads(summary.read_text())
    assert figures["operations_tested"] == OPERATIONS, done.stdout
    assert figures["failures"] == {}, done.stdout  # response_schema_conformance among them
    assert figures["server_errors"] == 0 and figures["tracebacks"] == 0, done.stdout
    assert figures["open_doors"] == [] and figures["token_survived"] is True, done.stdout
    assert done.returncode == 0, done.stdout
