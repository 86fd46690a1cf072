"""Orgs, users and tokens through the API: roles, shown-once secrets, revocation."""

from __future__ import annotations

import msgspec

from appliance import models
from appliance.contract.errors import ErrorBody
from tests.integration.control.conftest import Api


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_an_admin_adds_a_user_whose_token_works_once_shown(api: Api) -> None:
    r = api.call("POST", "/api/v1/users", json={"name": "carol", "role": "operator"})
    assert r.status_code == 201, r.text
    carol = r.json()
    assert carol["role"] == "operator" and carol["token"].startswith("mm_")
    # The secret is never stored or listed again; only its hash is.
    assert not models.ApiToken.select().where(models.ApiToken.token_hash == carol["token"]).exists()
    listed = api.call("GET", "/api/v1/tokens").json()
    assert all("token" not in t for t in listed)
    me = api.client.get("/api/v1/me", headers=bearer(carol["token"])).json()
    assert me == {**me, "user": "carol", "role": "operator", "superuser": False}
    mine = next(t for t in api.call("GET", "/api/v1/tokens").json() if t["user"] == "carol")
    assert mine["last_used_at"] is not None


def test_tokens_are_revocable_and_capped_by_the_users_role(api: Api) -> None:
    dave = api.call("POST", "/api/v1/users", json={"name": "dave", "role": "viewer"}).json()
    r = api.call(
        "POST", "/api/v1/tokens", json={"name": "ci", "user_id": dave["id"], "role": "admin"}
    )
    assert r.status_code == 400 and r.json()["detail"].startswith("role: admin is above")
    ci = api.call("POST", "/api/v1/tokens", json={"name": "ci", "user_id": dave["id"]}).json()
    assert ci["role"] == "viewer"
    assert api.client.get("/api/v1/groups", headers=bearer(ci["token"])).status_code == 200
    r = api.call("DELETE", f"/api/v1/tokens/{ci['id']}")
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    r = api.client.get("/api/v1/groups", headers=bearer(ci["token"]))
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_deleting_a_user_revokes_their_tokens_but_not_the_last_admin(api: Api) -> None:
    erin = api.call("POST", "/api/v1/users", json={"name": "erin", "role": "admin"}).json()
    assert api.call("DELETE", f"/api/v1/users/{erin['id']}").status_code == 200
    r = api.client.get("/api/v1/me", headers=bearer(erin["token"]))
    assert r.status_code == 401
    me = api.call("GET", "/api/v1/me").json()
    r = api.call("DELETE", f"/api/v1/users/{me['user_id']}")
    assert r.status_code == 409 and "your own user" in r.json()["detail"]
    assert api.call("DELETE", "/api/v1/users/424242").status_code == 404


def test_bad_input_is_a_4xx_naming_the_field(api: Api) -> None:
    cases = [
        ("POST", "/api/v1/users", {"name": "x y", "role": "viewer"}, "name:"),
        ("POST", "/api/v1/users", {"name": "frank", "role": "god"}, "role: must be one of"),
        ("POST", "/api/v1/orgs", {"name": "beta", "currency": "EUR"}, "currency:"),
        ("POST", "/api/v1/orgs", {"name": "beta", "timezone": "Mars/Olympus"}, "timezone:"),
        ("POST", "/api/v1/orgs", {"name": "Beta Corp"}, "name:"),
    ]
    for method, path, body, field in cases:
        r = api.call(method, path, json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["detail"].startswith(field), (body, r.text)
    api.call("POST", "/api/v1/users", json={"name": "gina"})
    r = api.call("POST", "/api/v1/users", json={"name": "gina"})
    assert r.status_code == 409 and "already exists" in r.json()["detail"]


def test_the_superuser_creates_orgs_whose_admins_see_only_their_own(api: Api) -> None:
    r = api.call(
        "POST",
        "/api/v1/orgs",
        json={"name": "beta", "currency": "USD", "timezone": "America/New_York"},
    )
    assert r.status_code == 201, r.text
    beta = r.json()
    assert beta["currency"] == "USD" and beta["default_entitlement"] == "free"
    assert beta["registered_at"].endswith(("-04:00", "-05:00"))
    names = [o["name"] for o in api.call("GET", "/api/v1/orgs").json()]
    assert names == ["demo", "beta"]
    beta_admin = bearer(beta["admin"]["token"])
    assert [o["name"] for o in api.client.get("/api/v1/orgs", headers=beta_admin).json()] == [
        "beta"
    ]
    # An org admin is not the appliance's superuser.
    r = api.client.post("/api/v1/orgs", headers=beta_admin, json={"name": "gamma"})
    assert r.status_code == 403 and "superuser" in r.json()["detail"]
    # Tenants are isolated: beta's admin sees beta's users and groups only.
    assert [u["name"] for u in api.client.get("/api/v1/users", headers=beta_admin).json()] == [
        "admin"
    ]
    catalog = api.client.get("/api/v1/entitlements/catalog", headers=beta_admin).json()
    assert catalog["currency"] == "USD" and catalog["on_demand"]["cn10"]["hourly"] == 100
    r = api.call("POST", "/api/v1/orgs", json={"name": "beta"})
    assert r.status_code == 409


def test_errors_answer_the_one_error_body(api: Api) -> None:
    """A service error and a validation error both decode strictly into ErrorBody."""
    missing = api.call("DELETE", "/api/v1/users/424242")
    body = msgspec.json.decode(missing.content, type=ErrorBody, strict=True)
    assert body.status_code == 404 and body.extra is msgspec.UNSET
    assert set(missing.json()) == {"status_code", "detail"}
    bad = api.call("POST", "/api/v1/users", json={"name": 3})
    body = msgspec.json.decode(bad.content, type=ErrorBody, strict=True)
    assert body.status_code == 400 and body.detail.startswith("name")
    assert isinstance(body.extra, list) and body.extra
