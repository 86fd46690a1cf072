"""The real appliance app (lifespan, scheduler, bus on the session Mosquitto) on each
database, driven through Litestar's test client, with a token per role."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from appliance import auth, models
from appliance.accounts import service as accounts
from appliance.app import create_app
from appliance.config import Settings
from appliance.orgs.service import ensure_demo_org
from appliance.schedule import clock


@dataclass
class Api:
    client: TestClient
    tokens: dict[str, str]
    """role -> token of the demo org: "admin" is the superuser, "org_admin" an admin who is not."""
    org: models.Org

    def headers(self, role: str | None) -> dict[str, str]:
        return {} if role is None else {"Authorization": f"Bearer {self.tokens[role]}"}

    def call(self, method: str, path: str, role: str | None = "admin", **kw):
        return self.client.request(method, path, headers=self.headers(role), **kw)


def admin_caller(org: models.Org) -> auth.Caller:
    """The demo org's superuser admin, for seeding through the services."""
    user = accounts.superuser_of(org)
    assert user is not None
    return auth.Caller(
        org_id=org.id,
        role="admin",
        token_id=0,
        user_id=user.id,
        user_name=user.name,
        superuser=True,
    )


@contextlib.contextmanager
def running_api(appliance_db: str, mqtt_url: str, data_dir: Path, **settings: Any) -> Iterator[Api]:
    """The app on ``appliance_db`` with the demo org bootstrapped and a token per role."""
    config = Settings(
        data_dir=data_dir,
        db_url=appliance_db,
        mqtt_url=mqtt_url,
        embedded_broker=False,
        http_port=1,  # never bound: the test client calls the app in-process
        **settings,
    )
    config.data_dir.mkdir(parents=True)
    org, _ = ensure_demo_org(config.admin_token_path)
    tokens = {"admin": config.admin_token_path.read_text().strip()}
    boss = admin_caller(org)
    for role in ("viewer", "operator"):
        tokens[role] = accounts.create_user(boss, f"a-{role}", role).token
    tokens["org_admin"] = accounts.create_user(boss, "a-org-admin", "admin").token
    app = create_app(config)
    try:
        with TestClient(app, raise_server_exceptions=True) as client:
            yield Api(client, tokens, org)
    finally:
        clock.reset()


@pytest.fixture
def api(appliance_db: str, mosquitto, tmp_path: Path) -> Iterator[Api]:
    with running_api(appliance_db, mosquitto.url, tmp_path / "data") as running:
        yield running
