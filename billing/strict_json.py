"""JSON → typed struct, with every failure turned into one precise BillingInputError.

msgspec finds the problem; this module words it for a person and pins it to a
field path a person can find in their file: ``on_demand[2].end`` rather than
``$.on_demand[2].end``, and ``catalog.flat.flat10-30d.price`` where msgspec
only knows ``catalog.flat[...].price`` (it does not report mapping keys).
Duplicate keys, which JSON parsers silently resolve to the last one, are
rejected too: two ``tax_rate`` keys is a mistake, not a choice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from billing.errors import BillingInputError

T = TypeVar("T")

_BOM = b"\xef\xbb\xbf"
_IDENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*\Z")
_TOKEN = re.compile(r"\.([^.\[]+)|\[(\d+)\]|(\[\.\.\.\])")
_ANY_KEY = object()  # the path token msgspec writes as [...]

_KINDS = {
    "int": "an integer",
    "str": "a string",
    "decimal": "a number",
    "float": "a number with a fraction",
    "datetime": "a date-time string",
    "object": "an object",
    "array": "an array",
    "bool": "true or false",
    "null": "null",
}


def decode(raw: bytes, type_: type[T], choices: Mapping[str, tuple[str, ...]]) -> T:
    """Decode ``raw`` into ``type_`` strictly (no string→number coercion).

    ``choices`` maps a field name to its allowed strings, for enum messages.
    """
    raw = raw.removeprefix(_BOM)  # editors on Windows add one; it is not content
    if not raw.strip():
        raise BillingInputError("", "empty document; expected a JSON object")
    try:
        raw.decode("utf-8")  # msgspec lets a bad byte inside a key escape as UnicodeDecodeError
    except UnicodeDecodeError as exc:
        raise BillingInputError("", f"not UTF-8 text {_position(raw, exc.start)}") from None
    try:
        value = msgspec.json.decode(raw, type=type_, strict=True)
    except msgspec.ValidationError as exc:  # before DecodeError: it is a subclass
        raise _schema_error(raw, type_, str(exc), choices) from None
    except msgspec.DecodeError as exc:
        raise BillingInputError("", _syntax_message(raw, str(exc))) from None
    _reject_duplicate_keys(raw)
    return value


def _syntax_message(raw: bytes, text: str) -> str:
    found = re.search(r"^JSON is malformed: (.*) \(byte (\d+)\)$", text)
    if found is None:
        if "truncated" in text:
            return "invalid JSON: the document ends too early"
        return f"invalid JSON: {text}"
    return f"invalid JSON {_position(raw, int(found.group(2)))}: {found.group(1)}"


def _position(raw: bytes, offset: int) -> str:
    line = raw.count(b"\n", 0, offset) + 1
    column = offset - (raw.rfind(b"\n", 0, offset) + 1) + 1
    return f"at line {line}, column {column}"


def _schema_error(
    raw: bytes, type_: type[Any], text: str, choices: Mapping[str, tuple[str, ...]]
) -> BillingInputError:
    message, _, where = text.partition(" - at `")
    tokens = _tokens(where.rstrip("`")) if where else []
    if _ANY_KEY in tokens:
        tokens = _locate_key(raw, type_, text, tokens)
    field = re.fullmatch(r"Object (missing required|contains unknown) field `(.+)`", message)
    if field:
        tokens = [*tokens, field.group(2)]
        message = "is required" if field.group(1) == "missing required" else "is not a known field"
    else:
        message = _reword(message, tokens, choices)
    path = render_path(tokens)
    if not path:
        message = f"the document {message}"
    return BillingInputError(path, message)


def _reword(message: str, tokens: list[Any], choices: Mapping[str, tuple[str, ...]]) -> str:
    expected = re.fullmatch(r"Expected `(.+)`, got `(\w+)`", message)
    if expected:
        wanted = " or ".join(
            _KINDS.get(kind, kind) for kind in expected.group(1).split(" | ") if kind != "null"
        )
        got = _KINDS.get(expected.group(2), expected.group(2))
        if expected.group(1).startswith("int") and expected.group(2) in ("float", "decimal"):
            return "must be an integer (amounts are whole minor units: yen, cents)"
        return f"must be {wanted}, got {got}"
    enum = re.fullmatch(r"Invalid enum value (.+)", message, re.DOTALL)
    if enum:
        name = next((t for t in reversed(tokens) if isinstance(t, str)), "")
        allowed = choices.get(name)
        value = enum.group(1) if len(enum.group(1)) <= 40 else f"{enum.group(1)[:39]}…"
        if allowed:
            return f"must be one of {', '.join(allowed)}, got {value}"
        return f"is not an allowed value: {value}"
    if message.startswith("Invalid RFC3339"):
        return "must be an RFC 3339 date-time with a UTC offset, e.g. 2026-10-01T00:00:00+09:00"
    if message == "Invalid decimal string":
        return "must be a decimal number, e.g. 10 or 8.875"
    if message in ("Integer value out of range", "Number out of range"):
        return "is out of range"
    return message


def _tokens(where: str) -> list[Any]:
    """``$.a[0].b[...]`` → ``["a", 0, "b", _ANY_KEY]``."""
    tokens: list[Any] = []
    for name, index, _ in _TOKEN.findall(where.removeprefix("$")):
        if name:
            tokens.append(name)
        else:
            tokens.append(int(index) if index else _ANY_KEY)
    return tokens


def render_path(tokens: list[Any]) -> str:
    """How a person points at a field: ``coupons[1].code``, ``catalog.flat.gold.price``."""
    out = ""
    for token in tokens:
        if isinstance(token, int):
            out += f"[{token}]"
        elif token is _ANY_KEY:
            out += "[...]"
        elif _IDENT.match(token) and len(token) <= 40:
            out += f".{token}" if out else token
        else:  # quoted, and cut: a key pasted by mistake can be a whole file
            short = token if len(token) <= 40 else f"{token[:39]}…"
            out += f"[{json.dumps(short, ensure_ascii=False)}]"
    return out


def _locate_key(raw: bytes, type_: type[Any], text: str, tokens: list[Any]) -> list[Any]:
    """Replace msgspec's ``[...]`` with the mapping key whose value fails.

    msgspec stops at the first bad entry, so a copy of the document keeping only
    the first k entries of that mapping reproduces the very same error exactly
    when k reaches the culprit: a binary search over k finds it in a few
    re-decodes, even for a large mapping.
    """
    at = tokens.index(_ANY_KEY)
    try:
        # Numbers stay their own text (msgspec.Raw), so re-encoding changes nothing.
        doc = json.loads(raw, parse_int=msgspec.Raw, parse_float=msgspec.Raw)
        mapping = _walk(doc, tokens[:at])
    except (ValueError, RecursionError, LookupError, TypeError):
        return tokens  # not worth a second error: keep msgspec's own path
    if not isinstance(mapping, dict):
        return tokens
    items = list(mapping.items())

    def reproduces(k: int) -> bool:
        trial = msgspec.json.encode(_replace(doc, tokens[:at], dict(items[:k])))
        try:
            msgspec.json.decode(trial, type=type_, strict=True)
        except msgspec.ValidationError as exc:
            return str(exc) == text
        return False

    low, high = 1, len(items)
    if not items or not reproduces(high):
        return tokens
    while low < high:
        middle = (low + high) // 2
        if reproduces(middle):
            high = middle
        else:
            low = middle + 1
    return [*tokens[:at], items[low - 1][0], *tokens[at + 1 :]]


def _walk(doc: Any, tokens: list[Any]) -> Any:
    for token in tokens:
        doc = doc[token]
    return doc


def _replace(doc: Any, tokens: list[Any], value: Any) -> Any:
    """A copy of ``doc`` with the node at ``tokens`` replaced (the rest shared)."""
    if not tokens:
        return value
    head, rest = tokens[0], tokens[1:]
    if isinstance(doc, list):
        return [_replace(item, rest, value) if i == head else item for i, item in enumerate(doc)]
    return {k: _replace(v, rest, value) if k == head else v for k, v in doc.items()}


class _Pairs(list[tuple[str, Any]]):
    """One JSON object's (key, value) pairs as written, duplicates kept."""


def _reject_duplicate_keys(raw: bytes) -> None:
    # Runs only on a document msgspec accepted against the schema, so it is
    # valid UTF-8 JSON of bounded depth; numbers are irrelevant, keep them text.
    try:
        tree = json.loads(raw, object_pairs_hook=_Pairs, parse_int=str, parse_float=str)
    except (ValueError, RecursionError):
        return  # the stdlib is stricter on some exotic input msgspec accepted; not our point
    _check_pairs(tree, [])


def _check_pairs(node: Any, tokens: list[Any]) -> None:
    if isinstance(node, _Pairs):
        seen: set[str] = set()
        for key, value in node:
            if key in seen:
                raise BillingInputError(render_path([*tokens, key]), "appears twice in one object")
            seen.add(key)
            _check_pairs(value, [*tokens, key])
    elif isinstance(node, list):
        for index, item in enumerate(node):
            _check_pairs(item, [*tokens, index])
