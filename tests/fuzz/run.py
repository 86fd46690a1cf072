"""Schema-driven fuzzing of the whole API against a real ``mockmock up``, with figures.

    uv run python -m tests.fuzz.run --examples 300        # the benchmark run (minutes)
    uv run python -m tests.fuzz.run --examples 8 --json s.json   # what CI runs
    uv run python -m tests.fuzz.run --examples 30 --paths '/api/v1/audit(/|$)'  # one domain

Schemathesis reads ``/schema/openapi.json`` and runs every check (``-c all``:
server errors, status codes, content types, response schemas and headers,
positive/negative data, auth, Allow headers, ...) in its examples, coverage,
fuzzing and stateful phases, ``--examples`` test cases per operation, with an
admin (superuser) token. Allowances are in ``tests/fuzz/schemathesis.toml``.
First it makes one resource of each kind (``SEED_CALLS``), whose names and ids the
fuzzer draws now and then, so success answers of ``/{name}`` and ``/{id}``
operations are checked against their schemas too.

Two passes, so the fuzzer never revokes its own token before it is done:
everything but ``/api/v1/tokens/{id}`` and ``/api/v1/users/{id}`` first, then
those. Between them every non-public operation is called without a token and
with a bogus one: each must answer 401. The appliance log must hold no
traceback (some errors happen after the answer is sent, where no status shows).

The appliance and the fuzzer run in a private network namespace (``unshare
-n``, loopback only): the fuzzer makes the appliance resolve names, fetch
verification URLs and start groups, and none of that may leave this host.
Exit 0 when every check passed, 1 otherwise, 2 when it could not run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.fixtures.ports import free_port
from tests.fixtures.processes import Appliance, mockmock
from tests.integration.control.test_roles import PUBLIC as ROLE_TESTS_PUBLIC

CONFIG = Path(__file__).with_name("schemathesis.toml")
LOCKOUT = r"^/api/v1/(tokens|users)/\{"
"""Revoking tokens or deleting users could revoke the fuzzer's own token: fuzzed last."""
PUBLIC = {(method.lower(), path) for method, path in ROLE_TESTS_PUBLIC}
"""Answer without an API token: the one list, beside the role tests."""
IN_NETNS = "MOCKMOCK_FUZZ_IN_NETNS"


@dataclass
class Figures:
    examples_per_operation: int
    seed: int
    operations_tested: int = 0
    test_cases: int = 0
    server_errors: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    failed_operations: dict[str, list[str]] = field(default_factory=dict)
    open_doors: list[str] = field(default_factory=list)
    tracebacks: int = 0
    token_survived: bool = False
    seconds: float = 0.0
    phases: dict[str, str] = field(default_factory=dict)
    """Per phase, what schemathesis reported for the main pass (success, skip, ...)."""
    passes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.failures or self.open_doors or self.tracebacks) and self.token_survived


def st_command() -> list[str]:
    found = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")
    return [found] if found else [sys.executable, "-m", "schemathesis.cli"]


def fuzz_pass(
    app: Appliance, work: Path, examples: int, seed: int, name: str, *filters: str
) -> dict[str, Any]:
    report = work / f"{name}.json"
    done = subprocess.run(
        [
            *st_command(),
            "--config-file",
            str(CONFIG),
            "run",
            f"{app.url}/schema/openapi.json",
            "--checks",
            "all",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--header",
            f"Authorization: Bearer {app.token}",
            "--max-examples",
            str(examples),
            "--workers",
            "1",
            "--seed",
            str(seed),
            "--request-timeout",
            "15",
            "--generation-database",
            "none",
            "--no-color",
            "--report",
            "json",
            "--report-json-path",
            str(report),
            *filters,
        ],
        capture_output=True,
        text=True,
        cwd=work,
        timeout=3600,
    )
    (work / f"{name}.out").write_text(done.stdout + done.stderr)
    if not report.exists():
        raise RuntimeError(f"schemathesis wrote no report:\n{done.stdout[-3000:]}{done.stderr}")
    return json.loads(report.read_text())


def add(figures: Figures, name: str, report: dict[str, Any]) -> None:
    figures.operations_tested += int(report["operations"]["tested"])
    figures.test_cases += int(report["test_cases"]["generated"])
    for f in report.get("failures", []):
        key = f"{f['code']} {f['title']}"
        figures.failures[key] = figures.failures.get(key, 0) + int(f["count"])
        figures.failed_operations.setdefault(key, []).extend(f.get("operations", []))
        if f["code"] == "ST101":
            figures.server_errors += int(f["count"])
    for e in report.get("errors", []):
        key = "errors"
        figures.failures[key] = figures.failures.get(key, 0) + 1
        figures.failed_operations.setdefault(key, []).append(json.dumps(e)[:300])
    if not figures.phases:
        figures.phases = {k: str(v["status"]) for k, v in report.get("phases", {}).items()}
    figures.passes.append(
        {
            "pass": name,
            "seconds": round(float(report["running_time"]), 1),
            "operations": report["operations"]["tested"],
            "test_cases": report["test_cases"]["generated"],
        }
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
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def open_doors(app: Appliance, paths: str | None = None) -> list[str]:
    """Non-public operations (whose path matches ``paths``) that answer anything but 401
    to a stranger."""
    with urllib.request.urlopen(f"{app.url}/schema/openapi.json", timeout=15) as r:
        schema = json.loads(r.read())
    found = []
    for path, ops in schema["paths"].items():
        if paths is not None and not re.match(paths, path):
            continue
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        for method in ops:
            if method not in ("get", "post", "put", "patch", "delete") or (method, path) in PUBLIC:
                continue
            for headers in ({}, {"Authorization": "Bearer mm_not-a-token"}):
                code = status(app, method, concrete, headers)
                if code != 401:
                    found.append(f"{method.upper()} {path} {headers or 'no token'}: {code}")
    return found


SEED_TEMPLATE = {
    "transport": {"mqtt": {"url": "mqtt://127.0.0.1:1", "topic": "lab/{device_id}/t"}},
    "interval": "1s",
    "payload": {"device": {"device_id": {}}, "seq": {"counter": {}}},
}
SEED_CALLS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("PUT", "/api/v1/templates/fuzz", SEED_TEMPLATE),
    ("PUT", "/api/v1/groups/fuzz", {"template": "fuzz", "count": 2}),
    ("POST", "/api/v1/groups/fuzz/start", None),
    ("POST", "/api/v1/entitlements/flat", {"plan": "flat10-30d"}),
    ("POST", "/api/v1/targets/networks", {"cidr": "10.99.0.0/16", "note": "fuzz"}),
    ("POST", "/api/v1/targets/verifications", {"url": "http://fuzz.invalid"}),
    ("POST", "/api/v1/billing/coupons", {"code": "FUZZ", "percent_off": 10}),
    ("POST", "/api/v1/invoices/draft-now", None),
]
"""Made before fuzzing, so that the operations on one resource reach it: ids 1 and the
name ``fuzz`` are in the dictionaries of ``schemathesis.toml`` (the fuzzer draws them
now and then, and anything else the rest of the time). Without them every
``/{name}`` and ``/{id}`` answer is a 404 and their success schemas go unchecked."""


def seed_resources(app: Appliance) -> None:
    for method, path, body in SEED_CALLS:
        try:
            app.api(method, path, body)
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"seeding {method} {path}: {e.code} {e.read()[:300]!r}") from None


def token_works(app: Appliance) -> bool:
    try:
        return bool(app.api("GET", "/api/v1/me"))
    except (urllib.error.URLError, OSError):
        return False


def run(examples: int, seed: int, work: Path, paths: str | None = None) -> Figures:
    """``paths``: fuzz only the operations whose path matches this regex (one domain's)."""
    # Schemathesis keeps only the last --exclude-path-regex: one regex for both rules.
    others = "" if paths is None else f"^(?!{paths})"
    main_exclude = f"{LOCKOUT}|{others}" if others else LOCKOUT
    lockout_exclude = ("--exclude-path-regex", others) if others else ()
    figures = Figures(examples, seed)
    started = time.monotonic()
    http, mqtt = free_port(), free_port()
    data = work / "appliance"
    args = ["up", "--headless", "--data-dir", str(data), "--http-port", str(http)]
    app = Appliance(data, http, mockmock(*args, "--mqtt-port", str(mqtt)))
    app.start(timeout=60)
    try:
        seed_resources(app)
        add(figures, "all but tokens/users", fuzz_pass(
            app, work, examples, seed, "main", "--exclude-path-regex", main_exclude
        ))  # fmt: skip
        figures.token_survived = token_works(app)
        figures.open_doors = open_doors(app, paths)
        add(figures, "tokens/users", fuzz_pass(
            app, work, examples, seed, "lockout", "--include-path-regex", LOCKOUT,
            *lockout_exclude,
        ))  # fmt: skip
    finally:
        app.proc.stop()
    log = app.proc.log_path.read_text(errors="replace")
    figures.tracebacks = log.count("Traceback (most recent call last)")
    if figures.tracebacks:
        (work / "appliance-tracebacks.log").write_text(log)
    figures.seconds = round(time.monotonic() - started, 1)
    return figures


def print_figures(f: Figures, work: Path) -> None:
    print(f"fuzz: {f.examples_per_operation} examples per operation, seed {f.seed}")
    for p in f.passes:
        print(
            f"  pass {p['pass']}: {p['operations']} operations, "
            f"{p['test_cases']} test cases, {p['seconds']} s"
        )
    print(f"  test cases: {f.test_cases}   server errors (5xx): {f.server_errors}")
    print(f"  other check failures: {sum(f.failures.values()) - f.server_errors}")
    for key, ops in sorted(f.failed_operations.items()):
        print(f"    {key}: {', '.join(sorted(set(ops)))}")
    print(f"  open doors (no/bogus token not 401): {len(f.open_doors)}")
    for door in f.open_doors:
        print(f"    {door}")
    print(f"  appliance tracebacks: {f.tracebacks}   token survived: {f.token_survived}")
    print(f"  total {f.seconds} s   {'ok' if f.ok else 'FAILED'} (details in {work})")


def _unshare_prefix() -> list[str] | None:
    """``unshare -n`` (root) or ``unshare -rn`` (user namespaces), whichever works here."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return None
    for flags in (["-n"], ["-r", "-n"]):
        probe = ["unshare", *flags, "--", "ip", "link", "set", "lo", "up"]
        if subprocess.run(probe, capture_output=True, timeout=30).returncode == 0:
            return ["unshare", *flags, "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]
    return None


def run_cli(
    tmp_path: Path, *args: str, timeout: float
) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
    """``python -m tests.fuzz.run ARGS`` as the tests run it: (its figures, the process)."""
    summary = tmp_path / "figures.json"
    done = subprocess.run(
        [
            sys.executable, "-m", "tests.fuzz.run", *args,
            "--json", str(summary), "--work-dir", str(tmp_path / "work"),
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert summary.exists(), done.stdout[-4000:] + done.stderr[-4000:]
    return json.loads(summary.read_text()), done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fuzz.run", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--examples", type=int, default=300, help="test cases per operation")
    parser.add_argument(
        "--seed", type=int, default=int(os.environ.get("MOCKMOCK_FUZZ_SEED", "20260401"))
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--paths", metavar="REGEX", help="fuzz only the operations whose path matches (re.match)"
    )
    parser.add_argument("--work-dir", type=Path, help="keep reports and logs here")
    parser.add_argument(
        "--no-netns",
        action="store_true",
        help="run in this network namespace (only where unshare is impossible)",
    )
    args = parser.parse_args(argv)
    if os.environ.get(IN_NETNS) != "1" and not args.no_netns:
        prefix = _unshare_prefix()
        if prefix is None:
            print(
                "error: needs `unshare -n` (util-linux, root or user namespaces) and `ip` to "
                "keep the fuzzed appliance's traffic on this host; --no-netns to run anyway",
                file=sys.stderr,
            )
            return 2
        env = {**os.environ, IN_NETNS: "1"}
        inner = [
            sys.executable,
            "-m",
            "tests.fuzz.run",
            *(argv if argv is not None else sys.argv[1:]),
        ]
        return subprocess.run([*prefix, *inner], env=env, check=False).returncode
    if os.environ.get(IN_NETNS) == "1":
        interfaces = {name for _, name in socket.if_nameindex()}
        if interfaces != {"lo"}:
            print(
                f"error: expected only loopback in the namespace, got {interfaces}", file=sys.stderr
            )
            return 2
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="mockmock-fuzz-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        figures = run(args.examples, args.seed, work, args.paths)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print_figures(figures, work)
    if args.json:
        args.json.write_text(json.dumps({**asdict(figures), "ok": figures.ok}, indent=2) + "\n")
    return 0 if figures.ok else 1


if __name__ == "__main__":
    sys.exit(main())
