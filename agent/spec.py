"""The leaf the template parts share: durations, msgspec errors as paths, one payload field.

``agent.template`` assembles a template from its parts (generators, statuses, faults,
encodings, commands, streams, Sparkplug); the parts need these few helpers, and taking
them from here instead of from the template keeps the arrows pointing one way.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import msgspec

from agent.errors import ScenarioError
from agent.limits import MAX_DURATION_MS

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, None: 1000}


def parse_duration_ms(value: Any) -> int:
    """``500ms``, ``1s``, ``2m``, ``1h``; a bare number means seconds."""
    if isinstance(value, bool):
        raise ValueError("must be a duration like 500ms, 1s or 2m")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("must not be negative")
        return _bounded_ms(value * 1000)
    if not isinstance(value, str):
        raise ValueError("must be a duration like 500ms, 1s or 2m")
    m = _DURATION.match(value)
    if not m:
        text = value.strip()
        if text.startswith("-"):
            raise ValueError(f"must not be negative, got {value!r}")
        raise ValueError(f"must be a duration like 500ms, 1s or 2m, got {value!r}")
    return _bounded_ms(float(m.group(1)) * _UNIT_MS[m.group(2)])


def _bounded_ms(ms: float) -> int:
    if not math.isfinite(ms) or ms > MAX_DURATION_MS:
        raise ValueError(f"must be at most {MAX_DURATION_MS // 86_400_000} days")
    return round(ms)


@dataclass(frozen=True)
class Field:
    generator: str
    params: Any


_REWRITES = [
    (re.compile(r"^Expected `(\w+)` >= (\S+)$"), r"must be >= \2"),
    (re.compile(r"^Expected `(\w+)` <= (\S+)$"), r"must be <= \2"),
    (re.compile(r"^Expected `(\w+)` > (\S+)$"), r"must be > \2"),
    (re.compile(r"^Expected `(.+)`, got `(\w+)`$"), r"expected \1, got \2"),
    (re.compile(r"^Object missing required field `(\w+)`$"), r"missing required field '\1'"),
    (re.compile(r"^Object contains unknown field `(.*)`$", re.S), r"unknown field '\1'"),
    (re.compile(r"^Invalid enum value (.+)$"), r"must be one of the allowed values, got \1"),
    (re.compile(r"^Expected `str` matching regex '(.*)'$"), r"must match \1"),
    (re.compile(r"^Expected `\w+` of length <= (\d+)$"), r"must be at most \1 long"),
    (re.compile(r"^Expected `\w+` of length >= (\d+)$"), r"must be at least \1 long"),
]


def _join(path: str, sub: str) -> str:
    if not sub:
        return path
    if not path:
        return sub
    return path + sub if sub.startswith("[") else f"{path}.{sub}"


def _split_msgspec(err: msgspec.ValidationError) -> tuple[str, str]:
    return split_message(str(err))


def split_message(text: str) -> tuple[str, str]:
    """msgspec says "Expected `int`, got `str` - at `$.count`"; we want (count, message)."""
    sub = ""
    m = re.match(r"^(.*) - at `\$(.*)`$", text, re.S)
    if m:
        text, sub = m.group(1), m.group(2).lstrip(".")
    for pattern, repl in _REWRITES:
        if pattern.match(text):
            text = pattern.sub(repl, text)
            break
    # Keys come from users: a newline in one must not break the one-line error.
    return sub, text.replace("`", "").replace("\n", "\\n").replace("\r", "\\r")


def convert(raw: Any, typ: Any, path: str) -> Any:
    """msgspec.convert with errors re-raised as ScenarioError under ``path``."""
    try:
        return msgspec.convert(raw, typ)
    except msgspec.ValidationError as e:
        sub, message = _split_msgspec(e)
        raise ScenarioError(_join(path, sub), message) from None
