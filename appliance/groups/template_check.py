"""Check and preview a template draft from an editor: YAML text in, one plain sentence out.

What the TUI (or any client) needs to edit templates without the agent's code:
the normalised spec or the first wrong field with its line, and the first
messages the engine would send on a virtual clock. Nothing is stored or sent.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import msgspec
import yaml

from agent.errors import AgentError, ScenarioError
from agent.template import parse_template
from appliance.contract.templates import (
    FieldProblem,
    PreviewDraft,
    PreviewMessage,
    PreviewResult,
    TemplateCheck,
    TemplateDraft,
)

# PyYAML's wording, said plainly; the original follows in parentheses.
_PLAIN_YAML = [
    ("mapping values are not allowed here", "a colon where a value was expected"),
    ("found character '\\t' that cannot start any token", "a tab: YAML indents with spaces"),
    ("could not find expected ':'", "a key without its colon"),
    ("did not find expected key", "a line that does not line up with the lines above"),
    ("expected <block end>", "a line that does not line up with the lines above"),
    ("found undefined alias", "an alias (*name) that no anchor (&name) defines"),
    ("found unexpected end of stream", "the text ends inside a quote or a bracket"),
    ("did not find expected ',' or '}'", "a {...} mapping that is not closed"),
    ("did not find expected ',' or ']'", "a [...] list that is not closed"),
    ("expected ',' or '}'", "a {...} mapping that is not closed"),
    ("expected ',' or ']'", "a [...] list that is not closed"),
]


def _yaml_sentence(e: yaml.YAMLError) -> FieldProblem:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    problem = str(getattr(e, "problem", None) or "").strip()
    plain = next((p for k, p in _PLAIN_YAML if problem.startswith(k)), "")
    what = f"{plain} ({problem})" if plain else problem or type(e).__name__
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    where = f", column {column}" if column is not None else ""
    message = f"not valid YAML{where}: {what}"
    return FieldProblem(message=message, line=line, column=column)


def parse_text(name: str, text: str) -> dict[str, Any] | FieldProblem:
    """The draft's document, or why its text is not one."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        return _yaml_sentence(e)
    except RecursionError:
        return FieldProblem(message="not valid YAML: nested too deeply", line=1)
    if raw is None:
        return FieldProblem(path=f"templates.{name}", message="is empty", line=1)
    if not isinstance(raw, dict):
        return FieldProblem(
            path=f"templates.{name}",
            message="must be a mapping of settings (transport, interval, payload, ...)",
            line=1,
        )
    return raw


def check(draft: TemplateDraft) -> TemplateCheck:
    """Validate a draft exactly as ``PUT /api/v1/templates/{name}`` would."""
    raw = parse_text(draft.name, draft.text)
    if isinstance(raw, FieldProblem):
        return TemplateCheck(valid=False, error=raw)
    try:
        spec = parse_template(draft.name, raw).to_dict()
    except ScenarioError as e:
        return TemplateCheck(valid=False, error=problem(draft.name, draft.text, e))
    return TemplateCheck(valid=True, spec=spec)


def problem(name: str, text: str, e: ScenarioError) -> FieldProblem:
    line = locate(text, e.path, name)
    return FieldProblem(path=e.path, message=e.message, line=None if line is None else line + 1)


async def preview(draft: PreviewDraft) -> PreviewResult:
    """The first messages of ``draft.devices`` mocks, from the real engine; sends nothing."""
    from agent.engine import preview as run_preview

    checked = check(draft)
    if not checked.valid or checked.spec is None:
        return PreviewResult(valid=False, seed=draft.seed, error=checked.error)
    # Its own loop in a worker thread: a heavy template must not stall the server's loop.
    try:
        rows = await asyncio.to_thread(
            asyncio.run,
            run_preview(
                draft.name,
                checked.spec,
                group=draft.name,
                devices=draft.devices,
                count=draft.count,
                seed=draft.seed,
                start=0.0,
            ),
        )
    except AgentError as e:  # valid, yet the engine cannot run it (e.g. a transport)
        return PreviewResult(valid=False, seed=draft.seed, error=FieldProblem(message=str(e)))
    return PreviewResult(
        valid=True, seed=draft.seed, messages=[msgspec.convert(r, PreviewMessage) for r in rows]
    )


def locate(text: str, path: str, name: str) -> int | None:
    """The line (0-based) of the deepest key of ``path`` found in block YAML ``text``."""
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
