"""Every money action in the TUI confirms first, stating the amount and the card, with Cancel
focused: approve, void, adjust, charge, refund, charge now, redeem a coupon, grant credit.

Against a real `mockmock serve` on Mosquitto and a real localstripe: a month close drafts
org-000's invoice (3 h of cn10: JPY 396); the demo org used cn10000 this month.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from textual.widgets import Input

from appliance import db
from appliance.entitlements.models import EntitlementInterval
from appliance.models import Org
from tests.e2e.billing_story import (
    TOKYO,
    WEBHOOK_SECRET,
    billing_appliance,
    invoices,
    register_card,
    seed,
)
from tests.tui.conftest import api_async, tui_for, until
from tui.screens.billing import BillingScreen
from tui.screens.coupons import CouponsScreen
from tui.widgets.confirm import ConfirmModal
from tui.widgets.form import FormModal

pytestmark = [pytest.mark.mqtt, pytest.mark.slow, pytest.mark.timeout(300)]

VISA = "4242424242424242"


def used_this_month(app: Any) -> int:
    """Half an hour (or the month so far) of cn10000 for the demo org, ended now."""
    now = dt.datetime.now(TOKYO)
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = max(month, now - dt.timedelta(minutes=30))
    database = db.connect(f"sqlite:///{app.data_dir / 'mockmock.sqlite3'}")
    try:
        org = Org.get(Org.name == "demo")
        EntitlementInterval.create(
            org=org.id,
            kind="on_demand",
            item="cn10000",
            capacity=10000,
            group_id=999,
            run_id=1,
            start=start.astimezone(dt.UTC).replace(tzinfo=None),
            end=now.astimezone(dt.UTC).replace(tzinfo=None),
        )
        return int(org.id)
    finally:
        database.close()


async def asked(pilot, app, key: str, *needles: str) -> ConfirmModal:
    """Press ``key``; the confirmation that comes states every needle, Cancel focused."""
    await pilot.press(key)
    modal = await until(pilot, lambda: isinstance(app.screen, ConfirmModal) and app.screen)
    said = "\n".join(modal._lines) + "\n" + modal._title
    for needle in needles:
        assert needle in said, (needle, said)
    assert app.focused is not None and app.focused.id == "cancel"
    return modal


async def fill(pilot, app, **values: str) -> None:
    form = await until(pilot, lambda: isinstance(app.screen, FormModal) and app.screen)
    for name, value in values.items():
        form.query_one(f"#field-{name}", Input).value = value
    await pilot.click("#submit")


async def test_every_money_action_confirms_with_the_amount(mosquitto, localstripe, tmp_path):
    app = billing_appliance(tmp_path, mosquitto.url, localstripe)
    app.start()
    app.proc.stop()
    (org_id,) = seed(app, 1)
    demo_id = used_this_month(app)
    app.start()  # the start-up tick closes last month: org-000's draft
    try:
        localstripe.send_webhooks_to(f"{app.url}/api/v1/stripe/webhook", WEBHOOK_SECRET)
        draft = (
            await asyncio.to_thread(
                app.wait_for,
                lambda: [i for i in invoices(app) if i["org_id"] == org_id],
                what="the month close",
            )
        )[0]
        assert draft["status"] == "draft" and draft["total"] == 396
        await asyncio.to_thread(register_card, app, localstripe, org_id, VISA)
        await asyncio.to_thread(register_card, app, localstripe, demo_id, VISA)
        await api_async(
            app, "POST", "/api/v1/billing/coupons", {"code": "WELCOME10", "percent_off": 10}
        )

        async with tui_for(app) as (tui, pilot):
            await pilot.press("6")
            screen = tui.screen
            assert isinstance(screen, BillingScreen)
            table = screen.query_one("#invoices")
            key = str(draft["id"])
            await until(pilot, lambda: key in table.shown_keys, what="the draft listed")
            table.focus()
            table.move_cursor(row=table.get_row_index(key))

            # Approve: amount and card; cancelled, nothing happens.
            await asked(pilot, tui, "a", "JPY 396", "visa", "4242", "org-000")
            await pilot.press("n")
            # Void: the status is read first, then the reason, then the amount.
            await pilot.press("v")
            await fill(pilot, tui, reason="wrong customer")
            await until(pilot, lambda: isinstance(tui.screen, ConfirmModal))
            said = " ".join(tui.screen._lines)
            assert "JPY 396" in said and "wrong customer" in said and "status draft" in said
            await pilot.press("escape")
            # Adjust: the credit and the invoice's amount.
            await pilot.press("j")
            await fill(pilot, tui, amount="100", reason="goodwill")
            await until(pilot, lambda: isinstance(tui.screen, ConfirmModal))
            said = " ".join(tui.screen._lines)
            assert "Credit:   JPY 100" in said and "JPY 396" in said
            await pilot.press("n")
            # Charge a draft: refused before any question.
            await pilot.press("c")
            status = screen.query_one("#status")
            await until(pilot, lambda: "cannot be charged" in str(status.render()))
            assert not isinstance(tui.screen, ConfirmModal)
            doc = await api_async(app, "GET", f"/api/v1/invoices/{draft['id']}")
            assert doc["status"] == "draft" and doc["total"] == 396  # nothing changed

            # Approve for real: paid.
            await asked(pilot, tui, "a", "JPY 396")
            await pilot.press("y")
            await until(
                pilot,
                lambda: getattr(screen._invoices.get(key), "status", None) == "paid",
                timeout=40,
                what="paid",
            )
            # Refund part of it: the amount refunded, the invoice's total, the card.
            await pilot.press("R")
            form = await until(pilot, lambda: isinstance(tui.screen, FormModal) and tui.screen)
            assert form.query_one("#field-amount", Input).value == "396"  # all, by default
            await fill(pilot, tui, amount="100", reason="outage credit")
            await until(pilot, lambda: isinstance(tui.screen, ConfirmModal))
            said = " ".join(tui.screen._lines)
            assert "JPY 100" in said and "invoice total JPY 396" in said and "4242" in said
            await pilot.press("y")
            await until(
                pilot,
                lambda: getattr(screen._invoices.get(key), "refunded", None) == 100,
                timeout=40,
                what="refunded 100",
            )

            # Charge now: the quote's amount and the card, before anything is closed.
            quote = await api_async(app, "GET", "/api/v1/billing/quote")
            assert quote["status"] == "chargeable"
            amount = f"JPY {quote['total']:,}"
            await asked(pilot, tui, "N", amount, "visa", "4242", "demo")
            await pilot.press("y")
            await until(
                pilot,
                lambda: any(
                    i.org == "demo" and i.status == "paid" for i in screen._invoices.values()
                ),
                timeout=40,
                what="the early invoice paid",
            )
            early = [i for i in invoices(app) if i["org_id"] == demo_id]
            assert [(i["total"], i["status"]) for i in early] == [(quote["total"], "paid")]

            # Coupons: redeem states the coupon's terms (10%, not 1E+1%); credit its amount.
            await pilot.press("o")
            coupons = await until(
                pilot, lambda: isinstance(tui.screen, CouponsScreen) and tui.screen
            )
            ctable = coupons.query_one("#coupons")
            await until(pilot, lambda: "WELCOME10" in ctable.shown_keys, what="the coupon")
            assert str(ctable.value("WELCOME10", "off")) == "10%"
            ctable.focus()
            ctable.move_cursor(row=ctable.get_row_index("WELCOME10"))
            await asked(pilot, tui, "d", "WELCOME10", "10% off all", "demo")
            await pilot.press("y")
            await until(
                pilot,
                lambda: (
                    coupons.account is not None
                    and any(c.code == "WELCOME10" for c in coupons.account.coupons)
                ),
                what="redeemed",
            )
            await pilot.press("g")
            await fill(pilot, tui, amount="500", reason="thank you")
            await until(pilot, lambda: isinstance(tui.screen, ConfirmModal))
            said = " ".join(tui.screen._lines) + tui.screen._title
            assert "JPY 500" in said and "demo" in said and "thank you" in said
            await pilot.press("y")
            await until(
                pilot,
                lambda: coupons.account is not None and coupons.account.credit_balance == 500,
            )
    finally:
        app.proc.stop()
