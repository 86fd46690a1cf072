"""Superuser takeover: the superuser is a flag set once, and nobody below it touches it.

An org admin of the demo org (where the superuser lives) tries what a hostile tenant
admin would: delete the superuser, revoke or mint its tokens, and plant a user named
``admin`` for the next start to promote.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance import auth
from appliance.accounts import service as accounts
from appliance.accounts.models import User
from appliance.errors import Conflict
from appliance.orgs.service import ensure_demo_org
from tests.integration.control.conftest import Api, running_api


@pytest.fixture
def api(appliance_db: str, mosquitto, tmp_path: Path) -> Iterator[Api]:
    with running_api(appliance_db, mosquitto.url, tmp_path / "data") as running:
        yield running


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def me(api: Api, token: str) -> dict:
    return api.client.get("/api/v1/me", headers=bearer(token)).json()


def test_an_org_admin_cannot_remove_the_superuser_nor_get_one_promoted(
    api: Api, tmp_path: Path
) -> None:
    token_file = tmp_path / "data" / "admin.token"  # where the fixture's bootstrap wrote it
    boss = me(api, api.tokens["admin"])
    assert boss["superuser"] is True
    mallory = bearer(api.tokens["org_admin"])
    assert me(api, api.tokens["org_admin"]) == {
        **me(api, api.tokens["org_admin"]),
        "role": "admin",
        "superuser": False,
    }

    # Below the superuser: no delete, no revoke, no token minted in its name.
    r = api.client.delete(f"/api/v1/users/{boss['user_id']}", headers=mallory)
    assert r.status_code == 403 and "superuser" in r.json()["detail"], r.text
    r = api.client.delete(f"/api/v1/tokens/{boss['token_id']}", headers=mallory)
    assert r.status_code == 403 and "superuser" in r.json()["detail"], r.text
    r = api.client.post(
        "/api/v1/tokens", headers=mallory, json={"name": "mine", "user_id": boss["user_id"]}
    )
    assert r.status_code == 403, r.text
    r = api.client.post(
        "/api/v1/users", headers=mallory, json={"name": "eve", "role": "admin", "superuser": True}
    )
    assert r.status_code == 403, r.text
    assert me(api, api.tokens["admin"])["superuser"] is True  # still there, token still live

    # A superuser makes another; that one may remove the first (not the last one).
    r = api.call("POST", "/api/v1/users", json={"name": "root", "role": "admin", "superuser": True})
    assert r.status_code == 201, r.text
    root = r.json()
    assert root["superuser"] is True
    r = api.client.delete(f"/api/v1/users/{boss['user_id']}", headers=bearer(root["token"]))
    assert r.status_code == 200, r.text

    # The name "admin" is free now; an org admin plants a user under it.
    r = api.client.post("/api/v1/users", headers=mallory, json={"name": "admin", "role": "admin"})
    assert r.status_code == 201, r.text
    planted = r.json()

    # The next start (what `mockmock up` / `serve` run) promotes nobody by name and hands
    # the token file to the remaining superuser.
    _, rewritten = ensure_demo_org(token_file)
    assert rewritten is True  # the old file's token died with its user
    assert User.get_by_id(planted["id"]).superuser is False
    assert me(api, planted["token"])["superuser"] is False
    fresh = me(api, token_file.read_text().strip())
    assert (fresh["user"], fresh["superuser"]) == ("root", True)
    assert User.select().where(User.superuser == True).count() == 1  # noqa: E712

    # The last superuser stays: not by itself, not by anyone else.
    r = api.client.delete(f"/api/v1/users/{root['id']}", headers=bearer(root["token"]))
    assert r.status_code == 409, r.text
    r = api.client.delete(f"/api/v1/users/{root['id']}", headers=mallory)
    assert r.status_code == 403, r.text
    nobody = auth.Caller(org_id=api.org.id, role="admin", token_id=0, superuser=True)
    with pytest.raises(Conflict, match="last superuser"):
        accounts.delete_user(nobody, root["id"])
