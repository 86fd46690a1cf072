"""Helpers for billing stories against a real ``mockmock serve`` and a real localstripe."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
import urllib.error
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import stripe

from appliance import db
from appliance.entitlements.models import EntitlementInterval
from appliance.models import Org
from tests.e2e.fleet import serve
from tests.fixtures.localstripe import PUBLISHABLE_KEY, SECRET_KEY, LocalStripe
from tests.fixtures.processes import Appliance

TOKYO = ZoneInfo("Asia/Tokyo")
WEBHOOK_SECRET = "whsec_mockmock_e2e"


def billing_appliance(tmp_path: Path, mqtt_url: str, ls: LocalStripe, **extra: object) -> Appliance:
    return serve(
        tmp_path,
        mqtt_url,
        stripe_api_key=SECRET_KEY,
        stripe_publishable_key=PUBLISHABLE_KEY,
        stripe_api_base=ls.url,
        stripe_js_url=ls.js_url,
        stripe_webhook_secret=WEBHOOK_SECRET,
        issuer_registration_number="T1234567890123",
        **extra,
    )


def last_month() -> tuple[dt.datetime, str]:
    """The start of last month in Tokyo (by the real clock) and its label."""
    now = dt.datetime.now(TOKYO)
    year, month = (now.year - 1, 12) if now.month == 1 else (now.year, now.month - 1)
    return dt.datetime(year, month, 1, tzinfo=TOKYO), f"{year:04d}-{month:02d}"


def seed(app: Appliance, orgs: int, hours: float = 3) -> list[int]:
    """Orgs registered before last month, each with ``hours`` of cn10 usage in it."""
    start, _ = last_month()
    database = db.connect(f"sqlite:///{app.data_dir / 'mockmock.sqlite3'}")
    ids = []
    try:
        with database.atomic():
            for i in range(orgs):
                org = Org.create(
                    name=f"org-{i:03d}",
                    currency="JPY",
                    timezone="Asia/Tokyo",
                    registered_at=(start - dt.timedelta(days=1))
                    .astimezone(dt.UTC)
                    .replace(tzinfo=None),
                    stripe_mode="test",
                    default_entitlement="on_demand:cn10",
                )
                at = (start + dt.timedelta(days=2)).astimezone(dt.UTC).replace(tzinfo=None)
                EntitlementInterval.create(
                    org=org.id,
                    kind="on_demand",
                    item="cn10",
                    capacity=10,
                    group_id=1000 + i,
                    run_id=1,
                    start=at,
                    end=at + dt.timedelta(hours=hours),
                )
                ids.append(org.id)
    finally:
        database.close()
    return ids


def used_this_month(app: Appliance, org_id: int, minutes: int) -> str:
    """``minutes`` of cn10 for ``org_id`` from the start of this month (Tokyo, the real
    clock), finished; returns the month's label. Skips in a month's first minutes."""
    import pytest

    now = dt.datetime.now(TOKYO)
    start = dt.datetime(now.year, now.month, 1, tzinfo=TOKYO)
    if now - start < dt.timedelta(minutes=minutes + 5):
        pytest.skip("too close to the start of a month for a month-so-far story")
    database = db.connect(f"sqlite:///{app.data_dir / 'mockmock.sqlite3'}")
    try:
        at = start.astimezone(dt.UTC).replace(tzinfo=None)
        with database.atomic():
            EntitlementInterval.create(
                org=org_id,
                kind="on_demand",
                item="cn10",
                capacity=10,
                group_id=2000 + org_id,
                run_id=1,
                start=at,
                end=at + dt.timedelta(minutes=minutes),
            )
    finally:
        database.close()
    return f"{now.year:04d}-{now.month:02d}"


def register_card(app: Appliance, ls: LocalStripe, org_id: int, number: str) -> str:
    """Card link (admin API) → SetupIntent (card page JSON) → SDK confirm → complete."""
    link = app.api("POST", "/api/v1/billing/card-link", {"org_id": org_id})
    token = link["url"].split("token=")[1]
    setup = app.api("GET", f"/billing/card/setup?org={org_id}&token={token}", auth=False)
    client = stripe.StripeClient(SECRET_KEY, base_addresses={"api": ls.url}, max_network_retries=0)
    pm = client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        }
    )
    client.v1.setup_intents.confirm(setup["setup_intent"], params={"payment_method": pm.id})
    done = app.api(
        "POST",
        f"/billing/card/complete?org={org_id}&token={token}",
        {"setup_intent": setup["setup_intent"]},
        auth=False,
    )
    assert done["card"].endswith(number[-4:])
    return str(link["customer"])


def invoices(app: Appliance) -> list[dict[str, Any]]:
    return app.api("GET", "/api/v1/invoices?all_orgs=true&limit=1000")


def wait_exit(app: Appliance, timeout: float = 60) -> int:
    assert app.proc.proc is not None
    deadline = time.monotonic() + timeout
    while app.proc.proc.poll() is None:
        assert time.monotonic() < deadline, f"appliance did not die\n{app.proc.log()}"
        time.sleep(0.1)
    return app.proc.proc.returncode


def start_or_die(app: Appliance) -> None:
    """Start; a process that kills itself while starting is fine (crash tests)."""
    with contextlib.suppress(RuntimeError, urllib.error.URLError):
        app.start()
