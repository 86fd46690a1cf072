"""``mockmock run``: tests as code against a running appliance."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Any

import click
import httpx

from agent.template import Scenario
from appliance.errors import ApplianceError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")


def parse_duration(text: str, field: str = "--duration") -> float:
    m = _DURATION.match(text)
    if not m:
        raise click.BadParameter(
            f"{text!r} is not a duration (e.g. 500ms, 30s, 2m)", param_hint=field
        )
    value = float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]
    if value <= 0:
        raise click.BadParameter("must be > 0", param_hint=field)
    return value


class RunError(ApplianceError):
    """The appliance refused or could not be reached; exit code 3."""


class Unreachable(RunError):
    """No answer (a restart, a network blip): worth asking again."""


class Client:
    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(
            base_url=self.url, timeout=30, headers={"Authorization": f"Bearer {token}"}
        )

    def __call__(self, method: str, path: str, **kw: Any) -> Any:
        try:
            r = self.http.request(method, path, **kw)
        except httpx.HTTPError as e:
            raise Unreachable(f"cannot reach the appliance at {self.url}: {e}") from None
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail", r.text)
            except ValueError:
                detail = r.text
            raise RunError(f"{method} {path}: {r.status_code} {detail}")
        return r.json()


def _patient(api: Client, method: str, path: str, timeout: float) -> Any:
    """``api(method, path)``, asked again while the appliance is unreachable (restarting):
    a run must still be stopped, and its counts read, after the appliance came back."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return api(method, path)
        except Unreachable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _wait_for_agents(api: Client, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        health = api("GET", "/api/v1/health")
        if health.get("agents_online", 0) > 0:
            return
        if time.monotonic() > deadline:
            raise RunError("no agent is online at the appliance (is `mockmock up` running?)")
        time.sleep(0.5)


def execute(api: Client, scenario: Scenario, duration: float, *, progress: bool = True) -> dict:
    _wait_for_agents(api, 20)
    for name, tpl in scenario.templates.items():
        api("PUT", f"/api/v1/templates/{name}", json=tpl.to_dict())
    for g in scenario.groups:
        body = {
            "template": g.template,
            "count": g.count,
            "seed": g.seed,
            "entitlement": g.entitlement,
        }
        api("PUT", f"/api/v1/groups/{g.name}", json=body)
    started: list[str] = []
    placed: dict[str, int] = {}
    try:
        for g in scenario.groups:
            doc = api("POST", f"/api/v1/groups/{g.name}/start")
            started.append(g.name)
            placed[g.name] = len({p["agent_id"] for p in doc["placement"]})
        t0 = time.monotonic()
        last = 0.0
        while (left := duration - (time.monotonic() - t0)) > 0:
            time.sleep(min(left, 1.0))
            if progress and time.monotonic() - last >= 2:
                last = time.monotonic()
                try:
                    sent = sum(api("GET", f"/api/v1/groups/{n}")["sent"] for n in started)
                except Unreachable:
                    click.echo(f"  {time.monotonic() - t0:5.1f}s  appliance unreachable", err=True)
                    continue
                click.echo(f"  {time.monotonic() - t0:5.1f}s  sent {sent}", err=True)
    finally:
        for name in started:
            try:
                _patient(api, "POST", f"/api/v1/groups/{name}/stop", 60)
            except RunError as e:
                click.echo(f"warning: {e}", err=True)
    # The final counts arrive with each agent's report after it stopped its mocks.
    docs: dict[str, dict] = {}
    deadline = time.monotonic() + 15
    for name in started:
        while True:
            doc = _patient(api, "GET", f"/api/v1/groups/{name}", 60)
            if _final(doc, placed[name]) or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        docs[name] = doc
    groups = {
        name: {
            "devices": d["count"],
            "sent": d["sent"],
            "errors": d["errors"],
            "lateness_ms": d["lateness_ms"],
            "device_seconds": d["device_seconds"],
            "run_id": d["run_id"],
            "last_errors": d["last_errors"][:5],
            "complete": _final(d, placed[name]),
        }
        for name, d in docs.items()
    }
    return {
        "duration_s": duration,
        "sent": sum(g["sent"] for g in groups.values()),
        "errors": sum(g["errors"] for g in groups.values()),
        "lateness_ms": {
            "p50": max((g["lateness_ms"]["p50"] for g in groups.values()), default=0.0),
            "p99": max((g["lateness_ms"]["p99"] for g in groups.values()), default=0.0),
        },
        "groups": groups,
    }


def _final(doc: dict, placed_agents: int) -> bool:
    """Every agent that ran the group (every process of it) reported it stopped."""
    reporting = doc["agents_reporting"]
    return reporting >= placed_agents and doc["agents_stopped"] >= reporting


def verdict(report: dict, max_error_rate: float) -> list[str]:
    problems = []
    for name, g in report["groups"].items():
        if g["sent"] == 0:
            problems.append(f"group {name}: sent nothing ({'; '.join(g['last_errors'])})")
        total = g["sent"] + g["errors"]
        if total and g["errors"] / total > max_error_rate:
            problems.append(f"group {name}: {g['errors']} errors of {total} sends")
        if not g["complete"]:
            problems.append(f"group {name}: not every agent reported its final counts")
    return problems


def token_from(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as e:
        raise click.BadParameter(f"{path}: {e.strerror}", param_hint="--token-file") from None


def stderr(line: str) -> None:
    print(line, file=sys.stderr)
