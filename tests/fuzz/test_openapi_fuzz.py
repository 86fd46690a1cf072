"""Schema-driven fuzzing of the whole API, as CI runs it: a few examples per operation.

The same run as the benchmark (``python -m tests.fuzz.run --examples 300``, see
its docstring and README "Fuzzing the API"), with every schemathesis check and
its stateful phase, in a private network namespace: no server error, no check
failure, no open door, no traceback in the appliance log, and the fuzzer keeps
its token until the last pass.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fixtures.ports import service_unavailable
from tests.fuzz.run import _unshare_prefix, run_cli

pytestmark = [pytest.mark.slow]

pytest.importorskip(
    "schemathesis", reason="schemathesis is not installed (it is in the dev dependency group)"
)
EXAMPLES = os.environ.get("MOCKMOCK_FUZZ_EXAMPLES", "8")


@pytest.mark.timeout(170)
def test_fuzzing_finds_no_server_error_no_failure_and_no_open_door(tmp_path: Path) -> None:
    if _unshare_prefix() is None:
        service_unavailable("`unshare -n` is not possible here (needs root or user namespaces)")
    figures, done = run_cli(tmp_path, "--examples", EXAMPLES, timeout=160)
    assert figures["server_errors"] == 0, done.stdout
    assert figures["failures"] == {}, done.stdout
    assert figures["open_doors"] == [], done.stdout
    assert figures["tracebacks"] == 0, done.stdout
    assert figures["token_survived"] is True
    # The stateful phase ran too (links between operations), not only the single calls.
    assert figures["phases"]["stateful"] == "success", figures["phases"]
    assert figures["operations_tested"] >= 60 and figures["test_cases"] > 1000
    assert done.returncode == 0, done.stdout
