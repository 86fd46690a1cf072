"""The real appliance app, in process, on the session's Mosquitto, with settings a test picks.

Like tests/integration/control's ``api`` fixture (tokens per role of the demo org,
whose admin is the superuser), plus a Stripe webhook secret, so signed events of the
wrong shape can be thrown at it, and the target-policy settings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from appliance.accounts import service as accounts
from appliance.app import create_app
from appliance.config import Settings
from appliance.orgs.service import ensure_demo_org
from appliance.schedule import clock
from tests.integration.control.conftest import Api, admin_caller
from tests.integration.transports.conftest import certs  # noqa: F401 - a test CA for TLS tests

WEBHOOK_SECRET = "whsec_mockmock_security_tests"

MakeApi = Callable[..., Api]


@pytest.fixture
def make_api(appliance_db: str, mosquitto: Any, tmp_path: Path) -> Iterator[MakeApi]:
    """``make_api(allow_loopback=False, lab_networks="10.0.0.0/8")`` -> a running :class:`Api`."""
    stack = ExitStack()

    def make(**overrides: Any) -> Api:
        settings = Settings(
            data_dir=tmp_path / "data",
            db_url=appliance_db,
            mqtt_url=mosquitto.url,
            embedded_broker=False,
            http_port=1,  # never bound: the test client calls the app in-process
            stripe_webhook_secret=WEBHOOK_SECRET,
            **overrides,
        )
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        org, _ = ensure_demo_org(settings.admin_token_path)
        tokens = {"admin": settings.admin_token_path.read_text().strip()}
        boss = admin_caller(org)
        for role in ("viewer", "operator"):
            tokens[role] = accounts.create_user(boss, f"a-{role}", role).token
        client = stack.enter_context(TestClient(create_app(settings)))
        return Api(client, tokens, org)

    try:
        yield make
    finally:
        stack.close()
        clock.reset()


@pytest.fixture
def api(make_api: MakeApi) -> Api:
    return make_api()


def mqtt_template(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "transport": {"mqtt": {"url": url, "topic": "lab/{device_id}", **extra}},
        "payload": {"n": {"counter": {}}},
    }


def http_template(url: str) -> dict[str, Any]:
    return {"transport": {"http": {"url": url}}, "payload": {"n": {"counter": {}}}}
