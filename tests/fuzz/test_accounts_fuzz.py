"""Schema-driven fuzzing of the accounts operations alone (users, tokens, /me, orgs, audit,
notices, billing email), with more examples per operation than the whole-API CI run:
every answer conforms to its documented schema, no server error, no open door."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.ports import service_unavailable
from tests.fuzz.run import _unshare_prefix, run_cli

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
    figures, done = run_cli(tmp_path, "--examples", "30", "--paths", PATHS, timeout=290)
    assert figures["operations_tested"] == OPERATIONS, done.stdout
    assert figures["failures"] == {}, done.stdout  # response_schema_conformance among them
    assert figures["server_errors"] == 0 and figures["tracebacks"] == 0, done.stdout
    assert figures["open_doors"] == [] and figures["token_survived"] is True, done.stdout
    assert done.returncode == 0, done.stdout
