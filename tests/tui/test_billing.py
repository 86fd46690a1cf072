"""An admin approves a draft invoice entirely through the TUI; localstripe has the payment."""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.billing_story import (
    WEBHOOK_SECRET,
    billing_appliance,
    invoices,
    last_month,
    register_card,
    seed,
)
from tests.tui.conftest import tui_for, until
from tui.screens.billing import BillingScreen
from tui.screens.invoice_detail import InvoiceDetail
from tui.widgets.confirm import ConfirmModal

pytestmark = [pytest.mark.mqtt, pytest.mark.slow, pytest.mark.timeout(180)]

VISA = "4242424242424242"


async def test_admin_approves_a_draft_invoice_through_the_tui(mosquitto, localstripe, tmp_path):
    app = billing_appliance(tmp_path, mosquitto.url, localstripe)
    app.start()
    app.proc.stop()
    (org_id,) = seed(app, 1)
    _, period = last_month()
    app.start()  # the start-up tick closes last month: a draft
    try:
        localstripe.send_webhooks_to(f"{app.url}/api/v1/stripe/webhook", WEBHOOK_SECRET)
        draft = (
            await asyncio.to_thread(
                app.wait_for,
                lambda: [i for i in invoices(app) if i["org_id"] == org_id],
                what="the month close",
            )
        )[0]
        assert draft["status"] == "draft" and draft["period"] == period
        customer = await asyncio.to_thread(register_card, app, localstripe, org_id, VISA)

        async with tui_for(app) as (tui, pilot):
            await pilot.press("6")
            screen = tui.screen
            assert isinstance(screen, BillingScreen)
            table = screen.query_one("#invoices")
            key = str(draft["id"])
            await until(pilot, lambda: key in table.shown_keys, what="the draft listed")
            table.focus()
            table.move_cursor(row=table.get_row_index(key))
            await pilot.press("enter")
            detail = await until(
                pilot, lambda: isinstance(tui.screen, InvoiceDetail) and tui.screen.doc
            )
            assert "TOTAL" in str(tui.screen.query_one("#invoice").render())

            await pilot.press("a")
            modal = await until(pilot, lambda: isinstance(tui.screen, ConfirmModal) and tui.screen)
            said = " ".join(modal._lines)
            assert "org-000" in said and "JPY 396" in said and "JPY" in said
            assert tui.focused is not None and tui.focused.id == "cancel"
            await pilot.press("y")
            detail = tui.screen
            assert isinstance(detail, InvoiceDetail)
            await until(
                pilot, lambda: detail.doc is not None and detail.doc.status == "paid", what="paid"
            )

        intents = localstripe.payment_intents(customer)
        assert [(pi["amount"], pi["status"]) for pi in intents] == [(396, "succeeded")]
    finally:
        app.proc.stop()
