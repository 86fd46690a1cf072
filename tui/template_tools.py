"""Templates in the editor: YAML text ↔ spec, local validation, error → line, seeded preview.

Validation and preview run the agent's own code (agent.template, agent.engine) here,
before anything is sent to the appliance.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

SKELETON = """\
transport:
  mqtt: {url: "mqtt://127.0.0.1:1883", topic: "lab/{device_id}/telemetry", qos: 0}
interval: 1s
payload:
  device: {device_id: {}}
  seq: {counter: {}}
  temp: {uniform: {min: 18.0, max: 26.0}}
  ts: {timestamp: {format: epoch_ms}}
"""


@dataclass(frozen=True)
class FieldError:
    path: str
    """Dotted, as the appliance names it: templates.<name>.payload.temp.uniform.max"""
    message: str
    line: int | None
    """0-based line of the field in the editor text, when found."""

    def __str__(self) -> str:
        where = f"line {self.line + 1}: " if self.line is not None else ""
        return f"{where}{self.path}: {self.message}" if self.path else f"{where}{self.message}"


def to_text(spec: dict[str, Any]) -> str:
    return yaml.safe_dump(spec, sort_keys=False, default_flow_style=False, allow_unicode=True)


def parse_text(name: str, text: str) -> dict[str, Any] | FieldError:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        return FieldError("", f"not YAML: {getattr(e, 'problem', e)}", mark.line if mark else None)
    if not isinstance(raw, dict):
        return FieldError(f"templates.{name}", "must be a mapping", 0)
    return raw


def validate(name: str, text: str) -> dict[str, Any] | FieldError:
    """The normalised spec, or the first wrong field and where it is in ``text``."""
    from agent.errors import ScenarioError
    from agent.template import parse_template

    raw = parse_text(name, text)
    if isinstance(raw, FieldError):
        return raw
    try:
        return parse_template(name, raw).to_dict()
    except ScenarioError as e:
        message = str(e).removeprefix(f"{e.path}: ") if e.path else str(e)
        return FieldError(e.path, message, locate(text, e.path, name))


_PATH_AND_MESSAGE = re.compile(r"^(templates\.[^\s:]+): (.*)$", re.S)


def from_detail(name: str, text: str, detail: str) -> FieldError:
    """The appliance's 400 ``detail`` ("templates.x.payload.y: ...") pinned to a line."""
    m = _PATH_AND_MESSAGE.match(detail)
    if not m:
        return FieldError("", detail, None)
    return FieldError(m.group(1), m.group(2), locate(text, m.group(1), name))


def locate(text: str, path: str, name: str) -> int | None:
    """The line of the deepest key of ``path`` found in block YAML ``text`` (0-based)."""
    parts = path.split(".")
    if parts[:2] == ["templates", name]:
        parts = parts[2:]
    lines = text.splitlines()
    found: int | None = None
    start, parent_indent = 0, -1
    for part in parts:
        key = re.compile(rf"^(\s*)(- )?[\"']?{re.escape(part)}[\"']?\s*:")
        for i in range(start, len(lines)):
            m = key.match(lines[i])
            indent = len(lines[i]) - len(lines[i].lstrip())
            if lines[i].strip() and indent <= parent_indent and i > start:
                break  # left the parent's block
            if m and len(m.group(1)) > parent_indent:
                found, start, parent_indent = i, i + 1, len(m.group(1))
                break
        else:
            break
        if found is None or found != start - 1:
            break
        # A flow mapping on the same line ({min: 1, max: x}) holds the rest: stop here.
        if "{" in lines[found]:
            break
    return found


async def preview(
    name: str, spec: dict[str, Any], *, seed: int, devices: int = 3, count: int = 3
) -> list[dict[str, Any]]:
    """What the first ``devices`` mocks would send first, on a virtual clock; sends nothing."""
    from agent.engine import preview as run_preview

    return await run_preview(
        name, spec, group=name, devices=devices, count=count, seed=seed, start=0.0
    )
