"""Snapshots of the screens at 80×24 and 160×48, fed fixed data (no appliance, a frozen clock).

Times show in the org's zone (Asia/Tokyo, "JST"); the data's age reads "just now"
because the app's clock does not move.
"""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from tests.tui import fixed_data as data
from tui.app import MockmockApp
from tui.screens.agent_detail import AgentDetail
from tui.screens.coupons import CouponsScreen
from tui.screens.group_detail import GroupDetail
from tui.screens.group_tail import TailScreen
from tui.screens.invoice_detail import InvoiceDetail
from tui.screens.usage import month_start

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]


def app_for(start: str, role: str = "admin") -> MockmockApp:
    return MockmockApp(None, role=role, start=start, timezone="Asia/Tokyo", clock=lambda: 0.0)


def fleet(app: MockmockApp) -> None:
    app.screen.show_agents(data.AGENTS, data.RATES)
    app.screen.fresh()


def groups(app: MockmockApp) -> None:
    app.screen.show_groups(data.GROUPS, data.GROUP_RATES)
    app.screen.fresh()


def templates(app: MockmockApp) -> None:
    app.screen.show_templates(data.TEMPLATES)
    app.screen.fresh()


def live(app: MockmockApp) -> None:
    for snap in data.snapshots():
        app.model.apply(snap, 0.0)
    app.live_updated()


def usage(app: MockmockApp) -> None:
    since = month_start("Asia/Tokyo", dt.datetime(2026, 11, 25, tzinfo=dt.UTC))
    app.screen.show_usage(data.ENTITLEMENTS, data.USAGE, data.CATALOG, data.HOURS, since)
    app.screen.show_quote(data.QUOTE)
    app.screen.fresh()


def billing(app: MockmockApp) -> None:
    app.screen.show_billing(data.INVOICES, data.ACCOUNT)
    app.screen.fresh()


def audit(app: MockmockApp) -> None:
    app.screen.show_entries(data.AUDIT)
    app.screen.fresh()


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
    app = app_for(mode)

    async def run_before(pilot) -> None:
        await pilot.pause()
        FEEDS[mode](app)
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_wide_numbers_are_whole(snap_compare, size: tuple[int, int]) -> None:
    """Ten-digit counters, 10,000-device groups and long names: numbers whole, names …"""
    app = app_for("groups")

    async def run_before(pilot) -> None:
        await pilot.pause()
        app.screen.show_groups(data.WIDE_GROUPS, data.WIDE_RATES)
        app.screen.fresh()
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_group_detail(snap_compare, size: tuple[int, int]) -> None:
    app = app_for("groups")

    async def run_before(pilot) -> None:
        await pilot.pause()
        for snap in data.snapshots(3):
            app.model.apply(snap, 0.0)
        detail = GroupDetail("thermo-fleet")
        await app.push_screen(detail)
        detail.show_group(data.DETAIL, data.GROUP_RATES["thermo-fleet"])
        detail.show_devices(data.DEVICES)
        detail.fresh()
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_group_tail(snap_compare, size: tuple[int, int]) -> None:
    app = app_for("groups")

    async def run_before(pilot) -> None:
        await pilot.pause()
        tail = TailScreen("thermo-fleet")
        await app.push_screen(tail)
        tail.show_tail(data.TAIL)
        tail.fresh()
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_agent_detail(snap_compare, size: tuple[int, int]) -> None:
    app = app_for("fleet")

    async def run_before(pilot) -> None:
        await pilot.pause()
        detail = AgentDetail(
            msgspec.structs.replace(data.AGENTS[0], last_seen="2026-11-25T13:00:00Z")
        )
        await app.push_screen(detail)
        detail.show_ranges(data.RANGES)
        detail.fresh()
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_invoice_detail(snap_compare, size: tuple[int, int]) -> None:
    app = app_for("billing")

    async def run_before(pilot) -> None:
        await pilot.pause()
        detail = InvoiceDetail(2)
        await app.push_screen(detail)
        detail.card = data.ACCOUNT.card
        detail.show_invoice(data.INVOICE_DOC)
        detail.fresh()
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_coupons(snap_compare, size: tuple[int, int]) -> None:
    app = app_for("billing")

    async def run_before(pilot) -> None:
        await pilot.pause()
        screen = CouponsScreen(data.ACCOUNT)
        await app.push_screen(screen)
        screen.show_coupons(data.COUPONS)
        screen.fresh()
        await pilot.pause()
        assert "10%" in str(screen.query_one("#coupons").value("WELCOME10", "off"))

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_viewer_billing_has_no_approve_key(snap_compare, size: tuple[int, int]) -> None:
    app = app_for("billing", role="viewer")

    async def run_before(pilot) -> None:
        await pilot.pause()
        billing(app)
        await pilot.pause()
        keys = {b.binding.action for b in app.screen.active_bindings.values()}
        assert "approve" not in keys

    assert snap_compare(app, terminal_size=size, run_before=run_before)
