"""Keys at 80×24: the screen's own keys first in the bottom line, help lists the app's keys
(not a table's), and `q` inside `mockmock up` asks before it stops the appliance."""

from __future__ import annotations

from tests.tui import fixed_data as data
from tui.app import MockmockApp
from tui.screens.help import HelpScreen
from tui.widgets.confirm import ConfirmModal
from tui.widgets.keybar import KeyBar


def keybar(app: MockmockApp) -> str:
    return str(app.screen.query_one(KeyBar).render())


async def test_the_key_bar_keeps_the_screens_own_keys_at_80_columns() -> None:
    app = MockmockApp(None, role="admin", start="groups", clock=lambda: 0.0)
    async with app.run_test(size=(80, 24)) as pilot:
        app.screen.show_groups(data.GROUPS, data.GROUP_RATES)
        await pilot.pause()
        text = keybar(app)
        for key in ("l Logs", "s Start", "x Stop", "c Scale", "n New", "? Help"):
            assert key in text, (key, text)
        assert text.index("Start") < text.index("Help")
        await pilot.press("6")
        await pilot.pause()
        text = keybar(app)
        for key in ("a Approve", "c Charge/retry", "v Void", "R Refund", "? Help"):
            assert key in text, (key, text)
        assert len(text) <= 78


async def test_a_viewer_sees_no_key_it_may_not_use() -> None:
    app = MockmockApp(None, role="viewer", start="groups", clock=lambda: 0.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        text = keybar(app)
        assert "Start" not in text and "New" not in text and "Logs" in text


async def test_help_lists_the_apps_keys_not_the_tables() -> None:
    app = MockmockApp(None, role="admin", start="billing", clock=lambda: 0.0)
    async with app.run_test(size=(80, 24)) as pilot:
        app.screen.show_billing(data.INVOICES, data.ACCOUNT)
        app.screen.query_one("#invoices").focus()
        await pilot.press("question_mark")
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        described = [what for _, what in help_screen.rows]
        assert "Approve" in described and "Refund" in described and "Charge now" in described
        table_keys = {"Cursor up", "Cursor down", "Page up", "Page down", "Select", "Top"}
        assert not table_keys & set(described), described
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_q_inside_mockmock_up_asks_before_stopping_the_appliance() -> None:
    app = MockmockApp(None, role="admin", start="fleet", stops_appliance=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("q")
        modal = app.screen
        assert isinstance(modal, ConfirmModal) and "stop the appliance" in modal._title
        assert app.focused is not None and app.focused.id == "cancel"
        await pilot.press("n")
        assert app.is_running and not isinstance(app.screen, ConfirmModal)
        await pilot.press("q")
        await pilot.press("y")
        await pilot.pause()
    assert app.return_code == 0 and not app.is_running


async def test_ctrl_q_twice_quits_and_a_plain_tui_quits_at_once() -> None:
    app = MockmockApp(None, role="admin", start="fleet", stops_appliance=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+q")
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert not app.is_running

    plain = MockmockApp(None, role="admin", start="fleet")
    async with plain.run_test(size=(80, 24)) as pilot:
        await pilot.press("q")
        await pilot.pause()
        assert not isinstance(plain.screen, ConfirmModal)
    assert not plain.is_running
