"""Snapshots of the main screens at 80×24 and 160×48, fed fixed data (no appliance, no clock)."""

from __future__ import annotations

import pytest

from tests.tui import fixed_data as data
from tui.app import MockmockApp
from tui.screens.invoice_detail import InvoiceDetail
from tui.screens.usage import month_start

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]


def fleet(app: MockmockApp) -> None:
    app.screen.show_agents(data.AGENTS, data.RATES)


def groups(app: MockmockApp) -> None:
    app.screen.show_groups(data.GROUPS)


def templates(app: MockmockApp) -> None:
    app.screen.show_templates(data.TEMPLATES)


def live(app: MockmockApp) -> None:
    for snap in data.snapshots():
        app.model.apply(snap)
    app.live_updated()


def usage(app: MockmockApp) -> None:
    import datetime as dt

    since = month_start("Asia/Tokyo", dt.datetime(2026, 11, 25, tzinfo=dt.UTC))
    app.screen.show_usage(data.ENTITLEMENTS, data.USAGE, data.CATALOG, data.HOURS, since)
    app.screen.show_quote(data.QUOTE)


def billing(app: MockmockApp) -> None:
    app.screen.show_billing(data.INVOICES, data.ACCOUNT)


def audit(app: MockmockApp) -> None:
    app.screen.show_entries(data.AUDIT)


FEEDS = {
    "fleet": fleet,
    "groups": groups,
    "templates": templates,
    "live": live,
    "usage": usage,
    "billing": billing,
    "audit": audit,
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("mode", list(FEEDS))
def test_screen(snap_compare, mode: str, size: tuple[int, int]) -> None:
    app = MockmockApp(None, role="admin", start=mode)

    async def run_before(pilot) -> None:
        await pilot.pause()
        FEEDS[mode](app)
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_invoice_detail(snap_compare, size: tuple[int, int]) -> None:
    app = MockmockApp(None, role="admin", start="billing")

    async def run_before(pilot) -> None:
        await pilot.pause()
        detail = InvoiceDetail(2)
        await app.push_screen(detail)
        detail.show_invoice(data.INVOICE_DOC)
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_viewer_billing_has_no_approve_key(snap_compare, size: tuple[int, int]) -> None:
    app = MockmockApp(None, role="viewer", start="billing")

    async def run_before(pilot) -> None:
        await pilot.pause()
        billing(app)
        await pilot.pause()
        keys = {b.binding.action for b in app.screen.active_bindings.values()}
        assert "approve" not in keys

    assert snap_compare(app, terminal_size=size, run_before=run_before)
