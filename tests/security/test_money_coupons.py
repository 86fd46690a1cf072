"""Partner coupons leak: codes are secrets; an org sees and redeems only what is its own.

The superuser makes a partner coupon limited to one org and a public one; another
org's admin lists coupons, then guesses codes: a code limited to someone else must
look exactly like a code that does not exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.control.conftest import Api, running_api


@pytest.fixture
def api(appliance_db: str, mosquitto, tmp_path: Path) -> Iterator[Api]:
    with running_api(appliance_db, mosquitto.url, tmp_path / "data") as running:
        yield running


def new_org(api: Api, name: str) -> dict[str, str]:
    made = api.call("POST", "/api/v1/orgs", json={"name": name}).json()
    return {"Authorization": f"Bearer {made['admin']['token']}"}


def codes(api: Api, headers: dict[str, str]) -> list[str]:
    r = api.client.get("/api/v1/billing/coupons", headers=headers)
    assert r.status_code == 200, r.text
    return [c["code"] for c in r.json()]


def test_an_org_sees_only_its_redeemed_coupons_and_cannot_tell_others_exist(api: Api) -> None:
    acme, rival = new_org(api, "acme"), new_org(api, "rival")
    r = api.call(
        "POST",
        "/api/v1/billing/coupons",
        json={"code": "ACME-PARTNER-50", "percent_off": 50, "orgs": ["acme"]},
    )
    assert r.status_code == 201 and r.json()["orgs"] == ["acme"], r.text
    r = api.call("POST", "/api/v1/billing/coupons", json={"code": "SPRING10", "percent_off": 10})
    assert r.status_code == 201, r.text
    r = api.call(
        "POST", "/api/v1/billing/coupons", json={"code": "X", "percent_off": 1, "orgs": ["nope"]}
    )
    assert r.status_code == 400 and r.json()["detail"].startswith("orgs:"), r.text

    # Nobody but the superuser lists codes they were not given.
    assert codes(api, rival) == [] and codes(api, acme) == []
    assert codes(api, {"Authorization": f"Bearer {api.tokens['org_admin']}"}) == []
    assert codes(api, api.headers("admin")) == ["ACME-PARTNER-50", "SPRING10"]

    # Another org's partner code answers like a code that does not exist.
    limited = api.client.post("/api/v1/billing/coupons/ACME-PARTNER-50/redeem", headers=rival)
    unknown = api.client.post("/api/v1/billing/coupons/ACME-PARTNER-51/redeem", headers=rival)
    assert limited.status_code == unknown.status_code == 404
    assert limited.json() == unknown.json()
    r = api.client.get("/api/v1/billing", headers=rival)
    assert r.json()["coupons"] == []

    # What an org was given it redeems and then sees; nothing more.
    assert (
        api.client.post("/api/v1/billing/coupons/SPRING10/redeem", headers=rival).status_code == 201
    )
    r = api.client.post("/api/v1/billing/coupons/ACME-PARTNER-50/redeem", headers=acme)
    assert r.status_code == 201, r.text
    assert codes(api, rival) == ["SPRING10"]
    assert codes(api, acme) == ["ACME-PARTNER-50"]
    every = {c["code"]: c for c in api.call("GET", "/api/v1/billing/coupons").json()}
    assert every["ACME-PARTNER-50"]["redemptions"] == 1 and every["SPRING10"]["orgs"] is None
