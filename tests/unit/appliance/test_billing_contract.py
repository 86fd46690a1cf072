"""The billing contract (appliance/contract/billing.py, entitlements.py, usage.py): what
the OpenAPI document says of each billing route's answer, and that the Structs send
billing's invoice JSON byte for byte as billing wrote it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar.serialization import encode_json

from appliance.app import create_app
from appliance.config import Settings
from appliance.contract import billing as contract
from appliance.entitlements import routes as entitlement_routes
from appliance.invoices import routes as invoice_routes
from billing import decode_scenario, encode_invoice, invoice, rate
from tests.unit.billing.factories import amount, buy, jst, percent, raw, scenario, use

HTML = {"/api/v1/invoices/{invoice_id}/document", "/billing/card", "/billing/pay"}
"""Pages for people (HTML), not JSON."""


def _paths(handlers: list[Any]) -> set[str]:
    return {p.replace(":int", "").replace(":str", "") for h in handlers for p in h.paths}


BILLING_PATHS = (
    _paths(invoice_routes.ROUTES) | _paths(entitlement_routes.ROUTES) | {"/api/v1/usage"}
)


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data: Path = tmp_path_factory.mktemp("data")
    app = create_app(
        Settings(
            data_dir=data,
            db_url=f"sqlite:///{data / 'appliance.sqlite3'}",
            mqtt_url="mqtt://127.0.0.1:1",
            embedded_broker=False,
            http_port=1,
        )
    )
    return app.openapi_schema.to_schema()


def _resolve(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    found: dict[str, Any] = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return found


def _success_answers(doc: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    out = []
    for path, ops in doc["paths"].items():
        if path not in BILLING_PATHS:
            continue
        for method, op in ops.items():
            if isinstance(op, dict):
                for code, answer in op.get("responses", {}).items():
                    if code.startswith("2"):
                        out.append((method, path, code, answer))
    return out


def test_every_billing_route_is_in_the_document(openapi: dict[str, Any]) -> None:
    assert set(openapi["paths"]) >= BILLING_PATHS
    assert len(_success_answers(openapi)) >= 31  # every operation of the billing routes


def test_every_billing_json_answer_is_a_real_schema_not_a_bare_object(
    openapi: dict[str, Any],
) -> None:
    vague = []
    for method, path, code, answer in _success_answers(openapi):
        content = answer.get("content", {})
        if path in HTML:
            assert list(content) == ["text/html"], (method, path)
            continue
        schema = content["application/json"]["schema"]
        if schema.get("type") == "array":
            schema = schema["items"]
        body = _resolve(schema, openapi)
        if not body.get("properties") or not body.get("required"):
            vague.append(f"{method.upper()} {path} {code}: {body}")
    assert vague == []


def test_an_invoice_answer_documents_its_lines_money_and_statuses(
    openapi: dict[str, Any],
) -> None:
    schemas = openapi["components"]["schemas"]
    doc = schemas["InvoiceDoc"]
    assert {"id", "number", "status", "total", "currency", "invoice", "adjustments"} <= set(
        doc["required"]
    )
    assert doc["properties"]["total"] == {"type": "integer"}
    rated = _resolve(doc["properties"]["invoice"], openapi)
    assert rated["properties"]["tax_rate"] == {"type": "number"}  # one type: 10 and 8.875
    lines = rated["properties"]["lines"]["items"]["oneOf"]
    kinds = {_resolve(x, openapi)["properties"]["kind"]["const"] for x in lines}
    assert kinds == {"on_demand", "flat"}
    coupon = schemas["Coupon"]
    # Fields only some answers carry are optional, never required-but-missing.
    assert {"orgs", "redemptions", "redeemed_at", "uses"}.isdisjoint(coupon["required"])


def _fields(kind: type[msgspec.Struct]) -> list[str]:
    return [f.name for f in msgspec.structs.fields(kind)]


@pytest.mark.parametrize(
    ("ours", "billings"),
    [
        (contract.RatedInvoice, invoice.Invoice),
        (contract.OnDemandLine, invoice.OnDemandLine),
        (contract.FlatLine, invoice.FlatLine),
        (contract.Discount, invoice.Discount),
        (contract.NotApplied, invoice.NotApplied),
    ],
)
def test_the_contract_has_billings_invoice_fields_in_billings_order(
    ours: type[msgspec.Struct], billings: type[msgspec.Struct]
) -> None:
    assert _fields(ours) == _fields(billings)
    assert ours.__struct_config__.tag == billings.__struct_config__.tag


@pytest.mark.parametrize("tax_rate", [10, "8.875", 0])
def test_a_rated_invoice_goes_out_byte_for_byte_as_billing_wrote_it(
    tax_rate: int | str,
) -> None:
    from decimal import Decimal

    doc = scenario(
        tax_rate=Decimal(str(tax_rate)),
        on_demand=[use("cn10", jst(3, 9), jst(3, 12, 30))],
        flat=[buy("flat10-30d", jst(5))],
        coupons=[
            percent("WELCOME10", "12.5", jst(1)),
            amount("LATE", 100, jst(1, month=11)),  # redeemed after the period: not applied
        ],
    )
    rated = rate(decode_scenario(raw(doc)))
    written = encode_invoice(rated)
    ours = msgspec.json.decode(written, type=contract.RatedInvoice)
    assert ours.not_applied and ours.discounts and len(ours.lines) == 2
    assert encode_json(ours) == written
