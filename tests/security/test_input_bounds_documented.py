"""Every integer a request carries is bounded, and the OpenAPI document says so.

A route added later with a bare ``int`` parameter or body field fails here, before a
fuzzer finds the overflow (money: within 10^12 minor units either way).
"""

from __future__ import annotations

from typing import Any

from tests.integration.control.conftest import Api

UNDOCUMENTED = {"NewCoupon.percent_off"}
"""Bounded (msgspec enforces it: ``str | Annotated[int, Meta] | None``), but Litestar
drops bounds inside a three-way union when it writes the schema."""


def integers(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The integer schemas in ``schema`` (plain or inside oneOf/anyOf with null)."""
    options = schema.get("oneOf") or schema.get("anyOf") or [schema]
    if any(o.get("type") == "integer" for o in options):
        merged = {**schema, **next(o for o in options if o.get("type") == "integer")}
        return [merged]
    return []


def test_every_integer_in_parameters_and_bodies_has_both_bounds(api: Api) -> None:
    doc = api.client.get("/schema/openapi.json").json()
    components = doc["components"]["schemas"]
    unbounded = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for p in op.get("parameters", []):
                for s in integers(p.get("schema", {})):
                    if "maximum" not in s or "minimum" not in s:
                        unbounded.append(f"{method.upper()} {path} {p['name']}")
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            refs = [body.get("schema", {})]
            refs += body.get("schema", {}).get("oneOf", [])
            for ref in refs:
                name = ref.get("$ref", "").rsplit("/", 1)[-1]
                for field, s in components.get(name, {}).get("properties", {}).items():
                    for i in integers(s):
                        bounded = "maximum" in i and "minimum" in i
                        if not bounded and f"{name}.{field}" not in UNDOCUMENTED:
                            unbounded.append(f"{method.upper()} {path} body {name}.{field}")
    assert sorted(set(unbounded)) == []
