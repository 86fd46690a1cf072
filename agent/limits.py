"""Limits: the process limits a board needs, and the bounds of every value a user gives.

Every number, name and pattern a scenario or an API request carries is bounded
here to its domain, so no input can overflow a database column (int64), recurse
without end, or make a ``{index:50000000d}`` allocate gigabytes. The scenario
parser and the appliance's API edge both import these bounds; each check says
what is wrong in one line, with the path of the field.
"""

from __future__ import annotations

import math
import os
import re
import resource
import string
from typing import Annotated, Any

import msgspec

from agent.errors import AgentError, ScenarioError

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_DEPTH = 32
"""Nesting of a request body or a template document (the payload's ``object`` nests too)."""
MAX_COUNT = 1_000_000
"""Devices in one group."""
MAX_DURATION_MS = 366 * 86_400_000
"""An interval, jitter, timeout, ramp-up or fault duration: at most a (leap) year."""
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
"""Template and group names (a path segment, a topic placeholder, a client-id prefix)."""
MAX_PATTERN = 1024
"""Characters of a topic, device-id, URL or credentials pattern."""
MAX_FORMAT_WIDTH = 32
"""Width or precision of a placeholder's format spec (``{index:05d}``)."""
MAX_PEM = 256 * 1024
"""Bytes of one inline PEM (a CA bundle of a few hundred certificates fits)."""

_NAME = re.compile(NAME_PATTERN[:-1])  # fullmatch: "$" would accept a trailing newline
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NUMBERS = re.compile(r"\d+")

Count = Annotated[int, msgspec.Meta(ge=1, le=MAX_COUNT)]
Seed = Annotated[int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX)]
Name = Annotated[str, msgspec.Meta(pattern=NAME_PATTERN)]


def is_name(value: Any) -> bool:
    return isinstance(value, str) and _NAME.fullmatch(value) is not None


def control_character(value: str) -> str | None:
    """The first control character in ``value`` (as ``\\x00``), or None."""
    m = _CONTROL.search(value)
    return None if m is None else f"\\x{ord(m.group()):02x}"


def check_text(value: str, path: str, *, max_len: int = MAX_PATTERN) -> None:
    """Names, topics and patterns: printable and of sane length."""
    if len(value) > max_len:
        raise ScenarioError(path, f"at most {max_len} characters, got {len(value)}")
    bad = control_character(value)
    if bad is not None:
        raise ScenarioError(path, f"must not contain control characters (found {bad})")


def placeholder_problem(pattern: str) -> str | None:
    """Why a ``str.format`` pattern could hurt (nested or converted fields, huge widths)."""
    try:
        parts = list(string.Formatter().parse(pattern))
    except ValueError as e:
        return f"bad placeholder: {e}"
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if conversion:
            return f"{{{name}!{conversion}}}: conversions are not supported"
        if spec and ("{" in spec or "}" in spec):
            return f"{{{name}:{spec}}}: nested placeholders are not supported"
        widest = max((int(n) for n in _NUMBERS.findall(spec or "")), default=0)
        if widest > MAX_FORMAT_WIDTH:
            return f"{{{name}:{spec}}}: width and precision must be <= {MAX_FORMAT_WIDTH}"
    return None


def check_document(value: Any, path: str) -> None:
    """A whole template or scenario document: nesting depth, int64 integers, finite floats.

    Walks iteratively (no recursion to exhaust) and names the first bad field.
    """
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        node, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ScenarioError(where, f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, bool):
            continue
        if isinstance(node, int):
            if not INT64_MIN <= node <= INT64_MAX:
                raise ScenarioError(where, f"integer out of range ({INT64_MIN}..{INT64_MAX})")
        elif isinstance(node, float):
            if not math.isfinite(node):
                raise ScenarioError(where, "must be a finite number")
        elif isinstance(node, dict):
            # Pushed in reverse, so the first bad field in document order is named.
            for k, v in reversed(node.items()):
                stack.append((v, f"{where}.{k}" if where else str(k), depth + 1))
        elif isinstance(node, list | tuple):
            for i in range(len(node) - 1, -1, -1):
                stack.append((node[i], f"{where}[{i}]", depth + 1))


FD_RESERVE = 64  # logs, the journal, the control connection, verify subscribers


def raise_open_files_limit() -> int:
    """Every per-device connection is a file descriptor: lift the soft limit (often
    1,024) to the hard one, as a board running 10,000 devices needs."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 16)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft
        return target
    return soft


def open_files() -> tuple[int, int]:
    """(descriptors open now, the soft limit) of this process."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        used = len(os.listdir("/proc/self/fd"))
    except OSError:
        used = 0
    return used, soft if soft != resource.RLIM_INFINITY else 1 << 30


def check_open_files(connections: int, what: str) -> None:
    """One clear line instead of a connect phase that retries forever: ``connections``
    more sockets must fit under the open-files limit (with a little room to spare)."""
    used, soft = open_files()
    if used + connections + FD_RESERVE > soft:
        raise AgentError(
            f"{what}: {connections} connections need {connections + FD_RESERVE} free file "
            f"descriptors but only {max(0, soft - used)} of {soft} are left (ulimit -n; "
            "raise the hard limit, e.g. LimitNOFILE= in the systemd unit)"
        )
