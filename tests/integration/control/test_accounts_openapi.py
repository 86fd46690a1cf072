"""The OpenAPI document describes every answer of the accounts routes (users, tokens, /me,
orgs, audit, notices, billing email) with its real schema, not a bare "object"."""

from __future__ import annotations

from typing import Any

import msgspec

from appliance.accounts import routes as account_routes
from appliance.audit import routes as audit_routes
from appliance.contract.errors import ErrorBody
from appliance.notify import routes as notify_routes
from appliance.openapi import ERROR_SCHEMA
from appliance.orgs import routes as org_routes
from tests.integration.control.conftest import Api

NOT_OURS = {"get_usage"}
"""In appliance/orgs/routes.py, but the usage domain's answer."""
HANDLERS = [
    h
    for routes in (account_routes, org_routes, audit_routes, notify_routes)
    for h in routes.ROUTES
    if h.handler_name not in NOT_OURS
]


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    found: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        found = found[part]
    return found


def fields_of(doc: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    """The properties the answer's object (or each item of its array) declares."""
    schema = resolve(doc, schema)
    if schema.get("type") == "array":
        schema = resolve(doc, schema["items"])
    assert schema.get("type") == "object", schema
    return set(schema.get("properties", {}))


def success(operation: dict[str, Any]) -> dict[str, Any]:
    (code,) = [c for c in operation["responses"] if c.startswith("2")]
    return operation["responses"][code]["content"]["application/json"]["schema"]


def test_every_accounts_answer_has_its_structs_schema(api: Api) -> None:
    doc = api.client.get("/schema/openapi.json").json()
    seen = []
    for handler in HANDLERS:
        for path in handler.paths:
            path = path.replace(":int}", "}")
            for method in handler.http_methods:
                op = doc["paths"][path][method.lower()]
                struct = handler.parsed_fn_signature.return_type.annotation
                struct = getattr(struct, "__args__", (struct,))[0]  # list[X] -> X
                assert issubclass(struct, msgspec.Struct), (method, path, struct)
                assert fields_of(doc, success(op)) == set(struct.__struct_fields__), (method, path)
                seen.append(f"{method} {path}")
    assert len(seen) == 14, seen


def test_the_documented_error_is_the_error_body() -> None:
    assert set(ERROR_SCHEMA["properties"]) == set(ErrorBody.__struct_fields__)
    required = {f.name for f in msgspec.structs.fields(ErrorBody) if f.required}
    assert set(ERROR_SCHEMA["required"]) == required
