"""No input gets a 5xx: every hostile number, nesting, encoding and date is one 4xx line.

Each request below once answered 500 (an int64 overflow in SQLite or PostgreSQL,
a RecursionError, a UnicodeDecodeError, an OverflowError from a date or a float)
or was stored as is. Now each is refused with one line that names the field.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from billing.stripe_adapter import sign_payload
from tests.integration.control.conftest import Api
from tests.security.conftest import WEBHOOK_SECRET, mqtt_template

TPL = mqtt_template("mqtt://127.0.0.1:1883")
FAR = "9999-12-31T23:59:59-09:00"


def deep(levels: int) -> dict[str, Any]:
    field: dict[str, Any] = {"counter": {}}
    for _ in range(levels):
        field = {"object": {"v": field}}
    return {**TPL, "payload": {"a": field}}


CASES = [
    # int64 and domain overflow in bodies
    ("PUT", "/api/v1/groups/g", {"template": "t", "count": 2**63}, "count: integer out of range"),
    ("PUT", "/api/v1/groups/g", {"template": "t", "count": 2**31}, "count: must be <= 1000000"),
    ("PUT", "/api/v1/groups/g", {"template": "t", "count": 1, "seed": 2**64}, "seed: integer"),
    ("PUT", "/api/v1/groups/g", {"template": "t", "count": 1, "seed": -(2**63) - 1}, "seed: int"),
    ("POST", "/api/v1/groups/g/scale", {"count": 2**63}, "count: integer out of range"),
    ("POST", "/api/v1/billing/credits", {"amount": 10**30, "reason": "x"}, "amount: integer"),
    # two of these summed into the org's balance overflowed int64 (found by the fuzzer)
    ("POST", "/api/v1/billing/credits", {"amount": 2**62, "reason": "x"}, "amount: must be <="),
    ("POST", "/api/v1/invoices/1/adjust", {"amount": 10**30, "reason": "x"}, "amount: integer"),
    ("POST", "/api/v1/invoices/1/refund", {"reason": "x", "amount": -(10**30)}, "amount: integer"),
    ("POST", "/api/v1/invoices/1/approve", {"expected_total": 10**30}, "expected_total: integer"),
    ("POST", "/api/v1/billing/card-link", {"org_id": 2**63}, "org_id: integer out of range"),
    ("POST", "/api/v1/agents/enroll", {"token": "x", "capacity": 2**40}, "capacity: must be <="),
    # ids in paths and queries: within the narrowest id column (PostgreSQL integer)
    ("GET", f"/api/v1/invoices/{2**63}", None, "invoice_id: must be <= 2147483647"),
    ("GET", f"/api/v1/invoices/{2**31}/document", None, "invoice_id: must be <= 2147483647"),
    ("POST", f"/api/v1/invoices/{2**63}/charge", None, "invoice_id: must be <= 2147483647"),
    ("DELETE", f"/api/v1/users/{2**63}", None, "user_id: must be <= 2147483647"),
    ("DELETE", f"/api/v1/entitlements/flat/{2**63}", None, "window_id: must be <="),
    ("GET", f"/api/v1/billing?org_id={2**63}", None, "org_id: must be <= 2147483647"),
    ("GET", f"/api/v1/audit?before_id={2**63}", None, "before_id: must be <= 2147483647"),
    ("GET", f"/api/v1/invoices?limit={2**63}", None, "limit: must be <= 1000"),
    ("POST", f"/api/v1/enrollment-tokens?ttl_seconds={2**63}", None, "ttl_seconds: must be <="),
    # floats and durations that overflow once multiplied
    ("PUT", "/api/v1/templates/t", {**TPL, "interval": 1e308}, "templates.t.interval: must be"),
    ("PUT", "/api/v1/templates/t", {**TPL, "jitter": 1e308}, "templates.t.jitter: must be"),
    ("PUT", "/api/v1/templates/t", {**TPL, "ramp_up": "1" * 30 + "h"}, "templates.t.ramp_up"),
    (
        "PUT",
        "/api/v1/templates/t",
        {**TPL, "payload": {"a": {"counter": {"start": 10**30}}}},
        "payload.a.counter.start: integer out of range",
    ),
    # nesting: decoders and the audit log's redaction recurse
    ("PUT", "/api/v1/templates/t", deep(40), "body: nested deeper than 32 levels"),
    ("PUT", "/api/v1/groups/g", b"[" * 100_000 + b"]" * 100_000, "body: nested deeper than"),
    ("POST", "/api/v1/billing/credits", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "body: nested"),
    # encodings
    ("PUT", "/api/v1/templates/t", b'{"transport": "\xff\xfe"}', "body: not valid UTF-8"),
    ("POST", "/api/v1/users", b'{"name": "\xc3\x28"}', "body: not valid UTF-8"),
    # year 9999: an offset or a window's days past it overflow datetime
    ("POST", "/api/v1/entitlements/flat", {"plan": "flat10-30d", "start": FAR}, "start: the year"),
    ("GET", f"/api/v1/entitlements/intervals?start={FAR}&end={FAR}", None, "start: the year"),
    ("GET", f"/api/v1/audit?since={FAR}", None, "since: the year must be between"),
]


def send(api: Api, method: str, path: str, body: Any, headers: dict[str, str] | None = None):
    content = body if isinstance(body, bytes) else None if body is None else json.dumps(body)
    return api.client.request(
        method,
        path,
        content=content,
        headers={**api.headers("admin"), "Content-Type": "application/json", **(headers or {})},
    )


@pytest.mark.parametrize(("method", "path", "body", "says"), CASES, ids=[c[3] for c in CASES])
def test_hostile_input_is_one_clear_4xx(
    api: Api, method: str, path: str, body: Any, says: str
) -> None:
    r = send(api, method, path, body)
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    detail = r.json()["detail"]
    assert detail.startswith(says), detail
    assert "\n" not in detail
    # The appliance keeps answering (no half-written state, no broken connection).
    assert api.call("GET", "/api/v1/health", None).status_code == 200


EVENT = {"id": "evt_x", "type": "payment_intent.succeeded", "livemode": False}
WEBHOOKS = [
    (b"[1, 2]", "body: expected object, got array"),
    (json.dumps({**EVENT, "data": []}).encode(), "data: expected object, got array"),
    (json.dumps({**EVENT, "data": {"object": "pi_1"}}).encode(), "data.object: expected object"),
    (
        json.dumps({**EVENT, "data": {"object": {"id": "pi_1", "amount": {"x": 1}}}}).encode(),
        "data.object.amount: expected int",
    ),
    (
        json.dumps({**EVENT, "data": {"object": {"id": "pi_1", "metadata": ["x"]}}}).encode(),
        "data.object.metadata: expected object",
    ),
    (
        json.dumps(
            {
                **EVENT,
                "type": "setup_intent.succeeded",
                "data": {"object": {"id": "seti_1", "customer": 5}},
            }
        ).encode(),
        "data.object.customer: expected str",
    ),
]


@pytest.mark.parametrize(("payload", "says"), WEBHOOKS, ids=[w[1] for w in WEBHOOKS])
def test_signed_webhook_of_the_wrong_shape_is_a_400(api: Api, payload: bytes, says: str) -> None:
    signature = sign_payload(payload, WEBHOOK_SECRET)
    r = api.client.post(
        "/api/v1/stripe/webhook",
        content=payload,
        headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
    )
    assert r.status_code == 400, (r.status_code, r.text[:300])
    assert r.json()["detail"].startswith(says), r.json()["detail"]


def test_a_signed_webhook_of_the_right_shape_still_goes_through(api: Api) -> None:
    obj = {"id": "pi_nobody", "status": "succeeded", "amount": 100, "metadata": {"x": "1"}}
    payload = json.dumps({**EVENT, "id": "evt_ok", "data": {"object": obj}}).encode()
    r = api.client.post(
        "/api/v1/stripe/webhook",
        content=payload,
        headers={"Stripe-Signature": sign_payload(payload, WEBHOOK_SECRET)},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["received"] is True and body["duplicate"] is False
    # Well formed but naming no attempt of ours: read, audited and ignored (never settled).
    assert "pi_nobody" in body["ignored"]
