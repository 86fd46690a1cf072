"""Every route of the app says who may call it: 401 without a token, 403 below its role.

The routes are enumerated from the app itself, so a route added later is covered
without touching this file; only a route meant to be public must be named here,
and a superuser-only route must bring a request that works for the superuser.
"""

from __future__ import annotations

import re

import pytest
from litestar.handlers.base import BaseRouteHandler
from litestar.routes import HTTPRoute

from appliance.api import is_public
from tests.integration.control.conftest import Api

PUBLIC = {
    ("GET", "/api/v1/health"),
    ("POST", "/api/v1/agents/enroll"),  # trades a one-time enrollment token
    ("POST", "/api/v1/stripe/webhook"),  # authenticated by Stripe's signature
    ("GET", "/billing/card"),  # hosted card and payment pages: a signed link is the key
    ("GET", "/billing/card/setup"),
    ("POST", "/billing/card/complete"),
    ("GET", "/billing/pay"),
    ("POST", "/billing/pay/complete"),
}
"""Everything that answers without an API token. A new public route must be added here."""
ADMIN_ONLY = {
    ("GET", "/api/v1/users"),
    ("POST", "/api/v1/users"),
    ("DELETE", "/api/v1/users/{user_id:int}"),
    ("GET", "/api/v1/tokens"),
    ("POST", "/api/v1/tokens"),
    ("DELETE", "/api/v1/tokens/{token_id:int}"),
    ("PUT", "/api/v1/entitlements/on-demand"),
    ("PUT", "/api/v1/entitlements/default"),
    ("POST", "/api/v1/entitlements/flat"),
    ("DELETE", "/api/v1/entitlements/flat/{window_id:int}"),
    ("POST", "/api/v1/enrollment-tokens"),
    ("POST", "/api/v1/orgs"),
    ("GET", "/api/v1/audit"),
    ("GET", "/api/v1/audit/verify"),
    ("GET", "/api/v1/billing/quote"),
}
"""At least these need the admin role (more may declare it with ``opt={"role": "admin"}``)."""
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
SUPERUSER_ONLY: dict[tuple[str, str], dict] = {
    ("POST", "/api/v1/orgs"): {"json": {"name": "matrix"}},
    ("POST", "/api/v1/invoices/close"): {},
    ("POST", "/api/v1/billing/credits"): {"json": {"amount": 100, "reason": "thank you"}},
    ("POST", "/api/v1/billing/coupons"): {"json": {"code": "MATRIX10", "percent_off": 10}},
}
"""Every route declaring ``opt={"superuser": True}``, with a request the superuser may make.

A new superuser-only route must be added here, so the matrix below proves an org admin
is refused it and the superuser is served."""


def concrete(path: str) -> str:
    path = re.sub(r"\{[^}:]+:int\}", "987654", path)
    return re.sub(r"\{[^}:]+:[a-z]+\}", "no-such-thing", path)


def endpoints(api: Api) -> list[tuple[str, str, BaseRouteHandler]]:
    out = []
    for route in api.client.app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        if route.path == "/schema" or route.path.startswith("/schema/"):
            continue  # the OpenAPI document and its viewers are public by design
        for method in sorted(route.methods - {"OPTIONS", "HEAD"}):
            out.append((method, route.path, route.route_handler_map[method][0]))
    return out


def private(api: Api) -> list[tuple[str, str, BaseRouteHandler]]:
    return [(m, p, h) for m, p, h in endpoints(api) if (m, p) not in PUBLIC]


def admin_only(method: str, path: str, handler: BaseRouteHandler) -> bool:
    return (method, path) in ADMIN_ONLY or handler.opt.get("role") == "admin"


def test_only_the_listed_routes_are_public(api: Api) -> None:
    declared = {(m, p) for m, p, h in endpoints(api) if is_public(p, h)}
    assert declared == PUBLIC
    found = {(m, p) for m, p, _ in endpoints(api)}
    assert found >= ADMIN_ONLY
    assert len(found) >= 25


def test_every_private_route_wants_a_token(api: Api) -> None:
    for method, path, _ in private(api):
        for headers in (
            {},
            {"Authorization": "Bearer mm_not-a-real-token"},
            {"Authorization": "x"},
        ):
            r = api.client.request(method, concrete(path), headers=headers)
            assert r.status_code == 401, (method, path, headers, r.status_code, r.text)
            assert "token" in r.json()["detail"]


def test_a_viewer_may_read_but_never_change(api: Api) -> None:
    for method, path, handler in private(api):
        r = api.call(method, concrete(path), "viewer")
        if method in MUTATING or admin_only(method, path, handler):
            assert r.status_code == 403, (method, path, r.status_code, r.text)
            assert "role" in r.json()["detail"]
        else:
            assert r.status_code not in (401, 403), (method, path, r.status_code, r.text)


def test_an_operator_runs_things_but_does_not_administer(api: Api) -> None:
    for method, path, handler in private(api):
        r = api.call(method, concrete(path), "operator")
        if admin_only(method, path, handler):
            assert r.status_code == 403, (method, path, r.status_code, r.text)
        else:
            assert r.status_code not in (401, 403), (method, path, r.status_code, r.text)


def test_an_admin_passes_every_guard(api: Api) -> None:
    for role in ("admin", "org_admin"):
        for method, path, handler in private(api):
            r = api.call(method, concrete(path), role)
            assert r.status_code < 500, (role, method, path, r.status_code, r.text)
            if not handler.opt.get("superuser"):
                assert r.status_code not in (401, 403), (role, method, path, r.text)


def superuser_only(api: Api) -> set[tuple[str, str]]:
    return {(m, p) for m, p, h in endpoints(api) if h.opt.get("superuser")}


def test_every_superuser_only_route_is_in_the_matrix(api: Api) -> None:
    assert superuser_only(api) == set(SUPERUSER_ONLY)


def test_an_org_admin_is_refused_what_only_the_superuser_may_do(api: Api) -> None:
    for method, path in sorted(superuser_only(api)):
        kw = SUPERUSER_ONLY[(method, path)]
        r = api.call(method, path, "org_admin", **kw)
        assert r.status_code == 403, (method, path, r.status_code, r.text)
        assert "superuser" in r.json()["detail"]
        r = api.call(method, path, "admin", **kw)
        assert 200 <= r.status_code < 300, (method, path, r.status_code, r.text)


def test_reaching_other_orgs_or_making_superusers_is_the_superusers_alone(api: Api) -> None:
    other = api.call("POST", "/api/v1/orgs", json={"name": "other"}).json()["id"]
    calls = [
        ("GET", "/api/v1/invoices", {"params": {"all_orgs": "true"}}),
        ("GET", "/api/v1/audit", {"params": {"all_orgs": "true"}}),
        ("GET", "/api/v1/billing", {"params": {"org_id": other}}),
        ("GET", "/api/v1/billing/quote", {"params": {"org_id": other}}),
        ("POST", "/api/v1/users", {"json": {"name": "root2", "role": "admin", "superuser": True}}),
    ]
    for method, path, kw in calls:
        r = api.call(method, path, "org_admin", **kw)
        assert r.status_code == 403, (method, path, kw, r.status_code, r.text)
        assert "superuser" in r.json()["detail"]
        r = api.call(method, path, "admin", **kw)
        assert 200 <= r.status_code < 300, (method, path, kw, r.status_code, r.text)


def test_public_routes_and_the_schema_answer_without_a_token(api: Api) -> None:
    assert api.client.get("/api/v1/health").status_code == 200
    schema = api.client.get("/schema/openapi.json")
    assert schema.status_code == 200
    assert "/api/v1/users" in schema.json()["paths"]
    # enroll is public but still refuses a bad one-time token
    r = api.client.post("/api/v1/agents/enroll", json={"token": "mme_nope"})
    assert r.status_code in (400, 401)


@pytest.mark.parametrize("role", ["viewer", "operator", "admin", "org_admin"])
def test_me_tells_the_caller_who_they_are(api: Api, role: str) -> None:
    me = api.call("GET", "/api/v1/me", role).json()
    assert me["role"] == role.removeprefix("org_") and me["org"] == "demo"
    assert me["superuser"] is (role == "admin")


@pytest.mark.parametrize(
    ("method", "path", "kw"),
    [
        ("DELETE", "/api/v1/users/99999999999999999999999", {}),
        ("DELETE", "/api/v1/tokens/0", {}),
        ("DELETE", "/api/v1/entitlements/flat/-1", {}),
        ("GET", "/api/v1/audit", {"params": {"before_id": "99999999999999999999999"}}),
        ("GET", "/api/v1/audit", {"params": {"action": "a\x00b"}}),
        ("POST", "/api/v1/tokens", {"json": {"name": "x", "user_id": 2**70}}),
        ("POST", "/api/v1/users", {"json": {"name": "nul\x00", "role": "viewer"}}),
        ("GET", "/api/v1/entitlements/intervals", {"params": {"start": "x", "end": "y"}}),
    ],
)
def test_hostile_input_is_a_4xx_never_a_500(api: Api, method: str, path: str, kw: dict) -> None:
    r = api.call(method, path, "admin", **kw)
    assert 400 <= r.status_code < 500, r.text
