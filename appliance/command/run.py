"""``mockmock run``: tests as code against a running appliance."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Any, TypeVar

import click
import httpx
import msgspec

from agent.template import Scenario
from appliance import gates
from appliance.contract.groups import GROUPS_PATH, TEMPLATES_PATH, Group, GroupSpec
from appliance.contract.health import HEALTH_PATH, Health
from appliance.errors import ApplianceError

T = TypeVar("T")
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
        return self._answer(method, path, **kw).json()

    def typed(self, kind: type[T], method: str, path: str, **kw: Any) -> T:
        """The answer decoded into one of the shared response types (``appliance.contract``)."""
        r = self._answer(method, path, **kw)
        try:
            return msgspec.json.decode(r.content, type=kind)
        except msgspec.DecodeError as e:
            raise RunError(f"{method} {path}: unexpected answer from the appliance ({e})") from None

    def group(self, method: str, name: str, action: str = "", **kw: Any) -> Group:
        path = f"{GROUPS_PATH}/{name}" + (f"/{action}" if action else "")
        return self.typed(Group, method, path, **kw)

    def _answer(self, method: str, path: str, **kw: Any) -> httpx.Response:
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
        return r


def _patient(api: Client, method: str, name: str, action: str, timeout: float) -> Group:
    """``api.group(method, name, action)``, asked again while the appliance is unreachable
    (restarting): a run must still be stopped, and its counts read, after it came back."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return api.group(method, name, action)
        except Unreachable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _wait_for_agents(api: Client, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if api.typed(Health, "GET", HEALTH_PATH).agents_online > 0:
            return
        if time.monotonic() > deadline:
            raise RunError("no agent is online at the appliance (is `mockmock up` running?)")
        time.sleep(0.5)


BEHAVIOUR = ("faults", "statuses", "transitions", "commands", "reconnects", "skipped", "verify")
VERIFY_COUNTS = ("received", "lost", "duplicates", "reordered", "malformed")


def _wait_ready(
    api: Client, names: list[str], timeout: float, progress: bool
) -> dict[str, float | None]:
    """Until every device of every group is connected and subscribed (commands, on_message
    transitions), so the measured window starts with a fleet that can hear; seconds it
    took per group, None for a group that was not ready within ``timeout``."""
    t0 = time.monotonic()
    waiting = set(names)
    took: dict[str, float | None] = dict.fromkeys(names)
    while waiting:
        for name in sorted(waiting):
            doc = api.group("GET", name)
            if doc.ready >= doc.count:
                took[name] = round(time.monotonic() - t0, 2)
                waiting.discard(name)
        if not waiting or time.monotonic() - t0 > timeout:
            break
        time.sleep(0.3)
    if progress and waiting:
        click.echo(f"  not ready after {timeout:g}s: {', '.join(sorted(waiting))}", err=True)
    return took


def _listens(t: Any) -> bool:
    transitions = t.statuses.transitions if t.statuses is not None else ()
    return t.commands is not None or t.sparkplug is not None or any(tr.topic for tr in transitions)


def _totals(groups: dict[str, dict]) -> dict[str, Any]:
    """Faults and verify figures summed over the groups (percentiles: the worst group)."""
    faults: dict[str, int] = {}
    for g in groups.values():
        for k, n in g["faults"].items():
            faults[k] = faults.get(k, 0) + n
    out: dict[str, Any] = {"faults": dict(sorted(faults.items())), "verify": None}
    verified = [g["verify"] for g in groups.values() if g.get("verify")]
    if verified:
        v: dict[str, Any] = {k: sum(x[k] for x in verified) for k in VERIFY_COUNTS}
        expected = v["received"] - v["duplicates"] + v["malformed"] + v["lost"]
        v["loss_rate"] = round(v["lost"] / expected, 6) if expected else 0.0
        v["latency_ms"] = {
            q: max(x["latency_ms"][q] for x in verified) for q in ("p50", "p99", "max")
        }
        out["verify"] = v
    return out


def execute(
    api: Client,
    scenario: Scenario,
    duration: float,
    *,
    progress: bool = True,
    ready_timeout: float = 60.0,
) -> dict:
    _wait_for_agents(api, 20)
    for name, tpl in scenario.templates.items():
        api("PUT", f"{TEMPLATES_PATH}/{name}", json=tpl.to_dict())
    for g in scenario.groups:
        spec = GroupSpec(template=g.template, count=g.count, seed=g.seed, entitlement=g.entitlement)
        api.group("PUT", g.name, json=msgspec.to_builtins(spec))
    started: list[str] = []
    placed: dict[str, int] = {}
    try:
        for g in scenario.groups:
            doc = api.group("POST", g.name, "start")
            started.append(g.name)
            placed[g.name] = len({p.agent_id for p in doc.placement})
        # Only devices that listen (commands, on_message, Sparkplug) need the broker to
        # confirm their subscriptions first; the others are ready once started.
        listening = [g.name for g in scenario.groups if _listens(scenario.templates[g.template])]
        ready = {n: 0.0 for n in started if n not in listening}
        ready.update(_wait_ready(api, listening, ready_timeout, progress))
        t0 = time.monotonic()
        last = 0.0
        while (left := duration - (time.monotonic() - t0)) > 0:
            time.sleep(min(left, 1.0))
            if progress and time.monotonic() - last >= 2:
                last = time.monotonic()
                try:
                    sent = sum(api.group("GET", n).sent for n in started)
                except Unreachable:
                    click.echo(f"  {time.monotonic() - t0:5.1f}s  appliance unreachable", err=True)
                    continue
                click.echo(f"  {time.monotonic() - t0:5.1f}s  sent {sent}", err=True)
    finally:
        for name in started:
            try:
                _patient(api, "POST", name, "stop", 60)
            except RunError as e:
                click.echo(f"warning: {e}", err=True)
    # The final counts arrive with each agent's report after it stopped its mocks.
    docs: dict[str, Group] = {}
    deadline = time.monotonic() + 15
    for name in started:
        while True:
            doc = _patient(api, "GET", name, "", 60)
            if _final(doc, placed[name]) or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        docs[name] = doc
    groups = {
        name: {
            "devices": d.count,
            "sent": d.sent,
            "errors": d.errors,
            "lateness_ms": msgspec.to_builtins(d.lateness_ms),
            "device_seconds": d.device_seconds,
            "run_id": d.run_id,
            "last_errors": d.last_errors[:5],
            "complete": _final(d, placed[name]),
            "ready_s": ready.get(name),
            **{k: msgspec.to_builtins(getattr(d, k)) for k in BEHAVIOUR},
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
        **_totals(groups),
        "groups": groups,
    }


def _final(doc: Group, placed_agents: int) -> bool:
    """Every agent that ran the group (every process of it) reported it stopped."""
    reporting = doc.agents_reporting
    return reporting >= placed_agents and doc.agents_stopped >= reporting


def verdict(report: dict, max_error_rate: float) -> list[str]:
    """The failed gates' lines (the error-rate gate and the always-on ones)."""
    return gates.failures(gates.checks(report, gates.Limits(max_error_rate=max_error_rate)))


def token_from(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as e:
        raise click.BadParameter(f"{path}: {e.strerror}", param_hint="--token-file") from None


def stderr(line: str) -> None:
    print(line, file=sys.stderr)
