"""Billing stories in-process: a migrated database, a real localstripe, a moved clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import stripe

from appliance import models
from appliance.entitlements.models import EntitlementInterval
from appliance.invoices import payments
from appliance.invoices.context import Billing, Issuer
from appliance.schedule import clock
from billing.stripe_adapter import Gateway
from tests.fixtures.localstripe import PUBLISHABLE_KEY, SECRET_KEY, LocalStripe
from tests.integration.control.conftest import Api, running_api

TOKYO = ZoneInfo("Asia/Tokyo")
WEBHOOK_SECRET = "whsec_mockmock_tests"
OCTOBER = dt.datetime(2026, 10, 1, tzinfo=TOKYO)
CLOSE_TIME = dt.datetime(2026, 11, 1, 0, 6, tzinfo=TOKYO)
"""Just after the October close (00:05 on 1 November in Tokyo)."""

VISA = "4242424242424242"
DECLINES_ON_CHARGE = "4000000000000341"
NEEDS_AUTHENTICATION = "4000002760003184"


@pytest.fixture
def cfg(localstripe: LocalStripe, appliance_db: str) -> Iterator[Billing]:
    yield Billing(
        gateway=Gateway(SECRET_KEY, localstripe.url),
        webhook_secret=WEBHOOK_SECRET,
        publishable_key=PUBLISHABLE_KEY,
        js_url=localstripe.js_url,
        link_base="http://127.0.0.1:8383",
        issuer=Issuer("mockmock K.K.", "1-2-3 Shibuya, Tokyo", "T1234567890123"),
    )
    clock.reset()


def sdk(localstripe: LocalStripe) -> stripe.StripeClient:
    return stripe.StripeClient(
        SECRET_KEY, base_addresses={"api": localstripe.url}, max_network_retries=0
    )


def new_org(name: str, currency: str = "JPY") -> models.Org:
    return models.Org.create(
        name=name,
        currency=currency,
        timezone="Asia/Tokyo",
        registered_at=dt.datetime(2026, 9, 15),
        stripe_mode="test",
    )


def used(org: models.Org, tier: str, start: dt.datetime, hours: float) -> None:
    """A recorded On-Demand interval (what a group run under ``tier`` leaves behind)."""
    utc = start.astimezone(dt.UTC).replace(tzinfo=None)
    EntitlementInterval.create(
        org=org.id,
        kind="on_demand",
        item=tier,
        capacity=10,
        group_id=1,
        run_id=1,
        start=utc,
        end=utc + dt.timedelta(hours=hours),
    )


def register_card(cfg: Billing, localstripe: LocalStripe, org: models.Org, number: str) -> str:
    """The card page's flow, driven through the SDK: SetupIntent → PaymentMethod → confirm."""
    link = payments.card_link(cfg, org.id, actor="user:admin")
    token = link.url.split("token=")[1]
    setup = payments.card_setup(cfg, org.id, token)
    client = sdk(localstripe)
    pm = client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        }
    )
    si = client.v1.setup_intents.confirm(setup.setup_intent, params={"payment_method": pm.id})
    if si.status == "succeeded":
        payments.card_complete(cfg, org.id, token, si.id)
    return pm.id


def stripe_api(
    appliance_db: str, mosquitto, localstripe: LocalStripe, tmp_path: Path
) -> Iterator[Api]:
    """The appliance's API with Stripe pointed at localstripe (a fixture's body)."""
    with running_api(
        appliance_db,
        mosquitto.url,
        tmp_path / "data",
        stripe_api_key=SECRET_KEY,
        stripe_publishable_key=PUBLISHABLE_KEY,
        stripe_api_base=localstripe.url,
        stripe_webhook_secret=WEBHOOK_SECRET,
    ) as running:
        yield running


@pytest.fixture
def api(appliance_db: str, mosquitto, localstripe: LocalStripe, tmp_path: Path) -> Iterator[Api]:
    yield from stripe_api(appliance_db, mosquitto, localstripe, tmp_path)


def org_through_api(api: Api, name: str) -> tuple[models.Org, dict[str, str]]:
    """An org registered on 1 October 2026 (Tokyo) and its own admin's headers."""
    clock.travel_to(OCTOBER)
    made = api.call("POST", "/api/v1/orgs", json={"name": name, "timezone": "Asia/Tokyo"})
    assert made.status_code == 201, made.text
    body = made.json()
    return models.Org.get_by_id(body["id"]), {"Authorization": f"Bearer {body['admin']['token']}"}
