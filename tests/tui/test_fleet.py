"""The fleet: agents listed live, filtered with `/`, and a one-time enrollment token."""

from __future__ import annotations

import pytest

from tests.tui.conftest import api_async, tui_for, until
from tui.widgets.token import TokenModal

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


async def enroll_board(appliance, hostname: str) -> str:
    token = await api_async(appliance, "POST", "/api/v1/enrollment-tokens")
    enrolled = await api_async(
        appliance,
        "POST",
        "/api/v1/agents/enroll",
        {"token": token["token"], "hostname": hostname, "arch": "aarch64"},
    )
    return enrolled["agent_id"]


async def test_filter_the_fleet(appliance_up) -> None:
    board = await enroll_board(appliance_up, "pi-kitchen")
    async with tui_for(appliance_up) as (app, pilot):
        table = app.screen.query_one("#agents")
        await until(pilot, lambda: len(table.shown_keys) == 2, what="two agents")

        await pilot.press("slash", *"kitchen")
        assert table.shown_keys == [board]
        assert "offline" in str(table.value(board, "state"))

        await pilot.press("enter")  # keep the filter, back to the table
        await pilot.press("escape")  # clear it
        assert len(table.shown_keys) == 2

        await pilot.press("slash", *"no-such-board")
        assert table.shown_keys == []
        await pilot.press("escape")


async def test_enrollment_token_is_shown_once_with_the_command(appliance_up) -> None:
    async with tui_for(appliance_up) as (app, pilot):
        await pilot.press("t")
        modal = await until(pilot, lambda: isinstance(app.screen, TokenModal) and app.screen)
        command = modal.answer.command
        assert command.startswith(f"curl -sfL {appliance_up.url}/agent/install.sh | sudo sh")
        await pilot.press("escape")
        assert not isinstance(app.screen, TokenModal)
