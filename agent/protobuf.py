"""Protobuf messages from ``.proto`` source, compiled when a scenario loads.

A board has no ``protoc``: the source is parsed in Python (proto-schema-parser)
into a ``FileDescriptorProto``, added to a private descriptor pool, and the
message class comes from protobuf's own runtime (``message_factory``). Values
from generators go in through ``json_format.ParseDict``, so nested messages,
repeated fields, enums by name and 64-bit integers behave as protobuf's JSON
mapping says. Compiled schemas are cached by their text: every device of a
group (and every group of a scenario) shares one class.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from agent.errors import ScenarioError

_SCALARS = {
    "double": 1,
    "float": 2,
    "int64": 3,
    "uint64": 4,
    "int32": 5,
    "fixed64": 6,
    "fixed32": 7,
    "bool": 8,
    "string": 9,
    "bytes": 12,
    "uint32": 13,
    "sfixed32": 15,
    "sfixed64": 16,
    "sint32": 17,
    "sint64": 18,
}  # fmt: skip  (FieldDescriptorProto.Type numbers)
TYPE_MESSAGE, TYPE_ENUM = 11, 14
LABEL_OPTIONAL, LABEL_REQUIRED, LABEL_REPEATED = 1, 2, 3
MAX_SCHEMA_BYTES = 1 << 20

_cache: dict[tuple[str, str], Any] = {}


def message_class(schema: str, message: str, path: str) -> Any:
    """The class of ``message`` (full name, e.g. ``lab.Reading``) in ``schema``."""
    key = (hashlib.sha256(schema.encode()).hexdigest(), message)
    cls = _cache.get(key)
    if cls is None:
        cls = _cache[key] = _compile(schema, message, path)
    return cls


def encoder(cls: Any, path: str) -> Callable[[Any], bytes]:
    """values (a dict) -> the serialized message."""
    from google.protobuf import json_format

    def dumps(values: Any) -> bytes:
        msg = cls()
        json_format.ParseDict(values, msg)
        return bytes(msg.SerializeToString())

    return dumps


def field_names(cls: Any) -> list[str]:
    return [f.name for f in cls.DESCRIPTOR.fields]


def _compile(schema: str, message: str, path: str) -> Any:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    from proto_schema_parser import ast
    from proto_schema_parser.parser import Parser

    if len(schema.encode()) > MAX_SCHEMA_BYTES:
        raise ScenarioError(path, f"the .proto is larger than {MAX_SCHEMA_BYTES} bytes")
    try:
        tree = Parser(setup_lexer=_strict, setup_parser=_strict).parse(schema)
    except _SyntaxError as e:
        raise ScenarioError(path, f"cannot parse the .proto: {e}") from None
    except Exception as e:  # the AST builder trips on what ANTLR recovered from
        raise ScenarioError(path, f"cannot parse the .proto: {type(e).__name__}: {e}") from None
    package = ""
    fdp = descriptor_pb2.FileDescriptorProto(name="scenario.proto")
    fdp.syntax = "proto3" if (tree.syntax or "proto2") == "proto3" else "proto2"
    for el in tree.file_elements:
        if isinstance(el, ast.Package):
            package = el.name
        elif isinstance(el, ast.Import):
            raise ScenarioError(path, f"imports are not supported ({el.name}): use one file")
    fdp.package = package
    prefix = f"{package}." if package else ""

    # Every message and enum by full name, so field types resolve like protoc does.
    kinds: dict[str, int] = {}

    def collect(elements: list[Any], scope: str) -> None:
        for el in elements:
            if isinstance(el, ast.Message):
                kinds[scope + el.name] = TYPE_MESSAGE
                collect(el.elements, f"{scope}{el.name}.")
            elif isinstance(el, ast.Enum):
                kinds[scope + el.name] = TYPE_ENUM

    collect(tree.file_elements, prefix)

    def resolve(name: str, scope: str) -> tuple[int, str]:
        if name.startswith("."):
            full = name[1:]
            if full in kinds:
                return kinds[full], "." + full
        parts = scope.rstrip(".").split(".") if scope else []
        while True:
            candidate = ".".join([*parts, name]) if parts else name
            if candidate in kinds:
                return kinds[candidate], "." + candidate
            if not parts:
                raise ScenarioError(path, f"the .proto names an unknown type {name!r}")
            parts.pop()

    def field(f: Any, scope: str, oneof: int | None = None) -> Any:
        out = descriptor_pb2.FieldDescriptorProto(name=f.name, number=f.number)
        card = getattr(f, "cardinality", None)
        card = getattr(card, "value", card)
        out.label = {"REPEATED": LABEL_REPEATED, "REQUIRED": LABEL_REQUIRED}.get(
            str(card), LABEL_OPTIONAL
        )
        if f.type in _SCALARS:
            out.type = _SCALARS[f.type]
        else:
            out.type, out.type_name = resolve(f.type, scope)
        if oneof is not None:
            out.oneof_index = oneof
        return out

    def enum(e: Any) -> Any:
        out = descriptor_pb2.EnumDescriptorProto(name=e.name)
        for v in e.elements:
            if isinstance(v, ast.EnumValue):
                out.value.add(name=v.name, number=v.number)
        return out

    def msg(m: Any, scope: str) -> Any:
        out = descriptor_pb2.DescriptorProto(name=m.name)
        inner = f"{scope}{m.name}."
        for el in m.elements:
            if isinstance(el, ast.Field):
                out.field.append(field(el, inner))
            elif isinstance(el, ast.MapField):
                entry = descriptor_pb2.DescriptorProto(name=_camel(el.name) + "Entry")
                entry.options.map_entry = True
                for i, (n, t) in enumerate((("key", el.key_type), ("value", el.value_type)), 1):
                    entry.field.append(field(ast.Field(name=n, number=i, type=t), inner))
                out.nested_type.append(entry)
                f = descriptor_pb2.FieldDescriptorProto(
                    name=el.name, number=el.number, label=LABEL_REPEATED, type=TYPE_MESSAGE
                )
                f.type_name = f".{inner}{entry.name}"
                out.field.append(f)
            elif isinstance(el, ast.OneOf):
                out.oneof_decl.add(name=el.name)
                idx = len(out.oneof_decl) - 1
                for of in el.elements:
                    if isinstance(of, ast.Field):
                        out.field.append(field(of, inner, idx))
            elif isinstance(el, ast.Message):
                out.nested_type.append(msg(el, inner))
            elif isinstance(el, ast.Enum):
                out.enum_type.append(enum(el))
            elif isinstance(el, ast.ExtensionRange):
                for r in el.ranges:
                    start, end = _range(r)
                    out.extension_range.add(start=start, end=end)
        return out

    for el in tree.file_elements:
        if isinstance(el, ast.Message):
            fdp.message_type.append(msg(el, prefix))
        elif isinstance(el, ast.Enum):
            fdp.enum_type.append(enum(el))
    pool = descriptor_pool.DescriptorPool()
    try:
        pool.Add(fdp)
        desc = pool.FindMessageTypeByName(message)
    except (KeyError, TypeError, ValueError) as e:
        known = ", ".join(sorted(k for k, v in kinds.items() if v == TYPE_MESSAGE))
        raise ScenarioError(
            path, f"no message {message!r} in the .proto ({e}; known: {known})"
        ) from None
    return message_factory.GetMessageClass(desc)


class _SyntaxError(Exception):
    pass


def _strict(recognizer: Any) -> None:
    """ANTLR prints syntax errors and carries on; we want the first one, raised."""
    from antlr4.error.ErrorListener import ErrorListener

    class Raise(ErrorListener):  # type: ignore[misc]
        def syntaxError(self, recognizer, offending, line, column, msg, e):  # ANTLR names it
            raise _SyntaxError(f"line {line}:{column}: {msg}")

    recognizer.removeErrorListeners()
    recognizer.addErrorListener(Raise())


def _camel(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in name.split("_"))


def _range(r: Any) -> tuple[int, int]:
    """An extensions range as (start, end exclusive); ``max`` is 2^29 - 1."""
    text = str(r).strip()
    lo, _, hi = text.partition(" to ")
    end = 536870911 if hi.strip() == "max" else int(hi or lo)
    return int(lo), end + 1
