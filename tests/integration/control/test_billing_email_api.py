"""The billing email and the notices over the API (admin only, one clear 400)."""

from __future__ import annotations

from tests.integration.control.conftest import Api


def test_set_read_and_clear_the_billing_email(api: Api) -> None:
    assert api.call("GET", "/api/v1/billing/email").json() == {"org": "demo", "email": None}
    r = api.call("PUT", "/api/v1/billing/email", json={"email": "x@y.test\r\nBcc: all@z.test"})
    assert r.status_code == 400 and r.json()["detail"].startswith("email: ")
    r = api.call("PUT", "/api/v1/billing/email", json={"email": "ap@demo.test"})
    assert r.status_code == 200 and r.json()["email"] == "ap@demo.test"
    assert api.call("GET", "/api/v1/billing/email").json()["email"] == "ap@demo.test"
    (entry,) = api.call("GET", "/api/v1/audit?action=billing.email").json()["entries"]
    assert entry["after"] == {"email": "ap@demo.test"} and entry["before"] == {"email": None}
    assert api.call("PUT", "/api/v1/billing/email", json={"email": ""}).json()["email"] is None
    assert api.call("PUT", "/api/v1/billing/email", json={"email": 5}).status_code == 400
    r = api.call("PUT", "/api/v1/billing/email", "operator", json={"email": "a@b.test"})
    assert r.status_code == 403


def test_notices_list_and_its_bounds(api: Api) -> None:
    assert api.call("GET", "/api/v1/notices").json() == []
    assert api.call("GET", "/api/v1/notices?limit=0").status_code == 400
    assert api.call("GET", "/api/v1/notices?all_orgs=true").status_code == 200  # superuser
    assert api.call("GET", "/api/v1/notices", "viewer").status_code == 403
