"""Schema-driven fuzzing of the whole API against a real `mockmock up`.

Schemathesis (from PyPI) reads `/schema/openapi.json` and throws generated and
mutated requests at every operation with an admin token: none may answer 5xx.
Then every operation is called without a token and with a bogus one: all but
the public ones must answer 401. Bounded: a few examples per operation, one
worker, well under three minutes.

Same as a command (README, "Fuzzing the API"):
    st run http://127.0.0.1:8383/schema/openapi.json -c not_a_server_error \\
        -H "Authorization: Bearer $(cat ~/.local/share/mockmock/admin.token)" -n 10
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.fixtures.processes import Appliance
from tests.integration.control.test_roles import PUBLIC as ROLE_TESTS_PUBLIC

pytestmark = [pytest.mark.slow]

st = pytest.importorskip(
    "schemathesis", reason="schemathesis is not installed (it is in the dev dependency group)"
)

# The one list of routes meant to answer without an API token (webhook: Stripe's
# signature; card pages: a signed link; enroll: a one-time token) lives beside the
# role tests; anything else must say 401 to a stranger.
PUBLIC = {(method.lower(), path) for method, path in ROLE_TESTS_PUBLIC}
"""Reachable without an API token (enrollment needs its one-time token instead)."""
LOCKOUT = r"^/api/v1/(tokens|users)/\{"
"""Revoking tokens or deleting users could revoke the fuzzer's own token: fuzzed last."""
MAX_EXAMPLES = "8"


def st_command() -> list[str]:
    found = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")
    if found:
        return [found]
    return [sys.executable, "-m", "schemathesis.cli"]


def fuzz(app: Appliance, tmp_path: Path, *filters: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *st_command(),
            "run",
            f"{app.url}/schema/openapi.json",
            "--checks",
            "not_a_server_error",
            "--header",
            f"Authorization: Bearer {app.token}",
            "--max-examples",
            MAX_EXAMPLES,
            "--workers",
            "1",
            "--phases",
            "examples,coverage,fuzzing",
            "--request-timeout",
            "15",
            "--generation-database",
            "none",
            "--seed",
            os.environ.get("MOCKMOCK_FUZZ_SEED", "20260401"),
            "--no-color",
            *filters,
        ],
        capture_output=True,
        text=True,
        timeout=150,
        cwd=tmp_path,
    )


def status(app: Appliance, method: str, path: str, headers: dict[str, str]) -> int:
    body = json.dumps({"token": "x"}).encode() if method in ("post", "put", "patch") else None
    req = urllib.request.Request(
        app.url + path,
        data=body,
        method=method.upper(),
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.mark.timeout(180)
def test_fuzzing_finds_no_server_error_and_no_open_door(
    appliance_up: Appliance, tmp_path: Path
) -> None:
    app = appliance_up
    schema = json.loads(urllib.request.urlopen(f"{app.url}/schema/openapi.json").read())

    done = fuzz(app, tmp_path, "--exclude-path-regex", LOCKOUT)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert app.api("GET", "/api/v1/me")  # the fuzzer kept its token: it tested as admin

    # No operation lets an anonymous or bogus caller in.
    open_doors = []
    for path, ops in schema["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        for method in ops:
            if method not in ("get", "post", "put", "patch", "delete") or (method, path) in PUBLIC:
                continue
            for headers in ({}, {"Authorization": "Bearer mm_not-a-token"}):
                code = status(app, method, concrete, headers)
                if code != 401:
                    open_doors.append(f"{method.upper()} {path} {headers or 'no token'}: {code}")
    assert open_doors == []

    done = fuzz(app, tmp_path, "--include-path-regex", LOCKOUT)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
