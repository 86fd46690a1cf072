"""Numbers are never cut, at 80×24 and at 160×48; text that has to give way shows an ellipsis.

Each screen is fed figures wider than the first rows it saw (a table used to keep
its first widths: "100/1" for 100/100, "1002" for 10,023).
"""

from __future__ import annotations

import re

import msgspec
import pytest

from tests.tui import fixed_data as data
from tests.tui.conftest import screen_text
from tui.app import MockmockApp
from tui.screens.agent_detail import AgentDetail
from tui.widgets.table import ResourceTable, plain

SIZES = [(80, 24), (160, 48)]

BIG_AGENTS = [
    msgspec.structs.replace(
        a, assigned=10000 + i, capacity=20000, cpu_percent=100.0, rss_mb=12345.6
    )
    for i, a in enumerate(data.AGENTS)
]
BIG_INVOICES = [
    msgspec.structs.replace(data.INVOICES[1], id=123456, status="requires_action", total=123456789),
    *data.INVOICES,
]


def check_table(app: MockmockApp, table: ResourceTable) -> None:
    text = "\n".join(screen_text(app))
    assert table.virtual_size.width <= table.size.width, "the table scrolls sideways"
    for col in table.cols:
        if col.num and not col.drop:
            assert col.label in table.visible_columns, f"{col.label} left out"
    for key in table.shown_keys:
        shown = table._shown[key]
        for name, cell in zip(table.visible_columns, shown, strict=True):
            raw = plain(table.value(key, name))
            col = table.cols[[c.label for c in table.cols].index(name)]
            if col.num:
                assert re.search(rf"(^|\s){re.escape(raw)}(\s|$)", text, re.M), (name, raw)
            else:
                seen = plain(cell)
                assert seen == raw or (seen.endswith("…") and raw.startswith(seen[:-1])), (
                    name,
                    raw,
                    seen,
                )


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_groups_first_small_then_wide(size: tuple[int, int]) -> None:
    app = MockmockApp(None, role="admin", start="groups", clock=lambda: 0.0)
    async with app.run_test(size=size) as pilot:
        app.screen.show_groups(data.GROUPS, data.GROUP_RATES)
        await pilot.pause()
        app.screen.show_groups(
            data.WIDE_GROUPS, data.WIDE_RATES
        )  # the same table, far wider figures
        await pilot.pause()
        table = app.screen.query_one("#groups", ResourceTable)
        check_table(app, table)
        text = "\n".join(screen_text(app))
        for whole in ("10,000/10,000", "1,234,567,890", "10,023", "49,876.5"):
            assert whole in text
        assert "…" in text  # the long names gave way, visibly


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_fleet_and_billing(size: tuple[int, int]) -> None:
    app = MockmockApp(None, role="admin", start="fleet", clock=lambda: 0.0)
    async with app.run_test(size=size) as pilot:
        app.screen.show_agents(data.AGENTS, data.RATES)
        await pilot.pause()
        app.screen.show_agents(BIG_AGENTS, {a.agent_id: 123456.7 for a in BIG_AGENTS})
        await pilot.pause()
        check_table(app, app.screen.query_one("#agents", ResourceTable))
        assert "10,000/20,000" in "\n".join(screen_text(app))

        await pilot.press("6")
        app.screen.show_billing(data.INVOICES, data.ACCOUNT)
        await pilot.pause()
        app.screen.show_billing(BIG_INVOICES, data.ACCOUNT)
        await pilot.pause()
        check_table(app, app.screen.query_one("#invoices", ResourceTable))
        text = "\n".join(screen_text(app))
        assert "JPY 123,456,789" in text and "requires_action" in text


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_agent_ranges_and_group_devices(size: tuple[int, int]) -> None:
    app = MockmockApp(None, role="admin", start="fleet", clock=lambda: 0.0)
    async with app.run_test(size=size) as pilot:
        detail = AgentDetail(data.AGENTS[0])
        await app.push_screen(detail)
        detail.show_ranges(data.RANGES)
        await pilot.pause()
        check_table(app, detail.query_one("#ranges", ResourceTable))


async def test_sorting_by_a_column_and_n_of_m() -> None:
    app = MockmockApp(None, role="admin", start="groups", clock=lambda: 0.0)
    async with app.run_test(size=(120, 30)) as pilot:
        app.screen.show_groups(data.GROUPS, data.GROUP_RATES)
        await pilot.pause()
        table = app.screen.query_one("#groups", ResourceTable)
        table.focus()
        for _ in range(5):  # group, template, state, mocks, sent/s
            await pilot.press("greater_than_sign")
        assert table.sort_label() == "by sent/s ▲"
        assert table.shown_keys == ["soak", "thermo-fleet", "door-sensors"]
        await pilot.press("exclamation_mark")
        assert table.shown_keys == ["door-sensors", "thermo-fleet", "soak"]
        info = str(app.screen.query_one("#info").render())
        assert "3 rows" in info and "by sent/s ▼" in info

        await pilot.press("slash", *"running")
        await pilot.pause()
        assert table.shown_keys == ["door-sensors", "thermo-fleet"]
        assert "2 of 3" in str(app.screen.query_one("#info").render())
