"""An operator creates a group from a template and starts it; its rate moves in the table."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from tests.tui.conftest import api_async, tui_for, until
from tui.screens.groups import GroupsScreen
from tui.widgets.form import FormModal

pytestmark = [pytest.mark.mqtt, pytest.mark.slow, pytest.mark.timeout(120)]


def thermo(broker_url: str) -> dict[str, object]:
    return {
        "transport": {"mqtt": {"url": broker_url, "topic": "tui/{device_id}/t", "qos": 0}},
        "interval": "200ms",
        "payload": {"seq": {"counter": {}}, "temp": {"uniform": {"min": 18.0, "max": 26.0}}},
    }


async def test_create_and_start_a_group_and_see_its_rate_move(appliance_up, mosquitto) -> None:
    await api_async(appliance_up, "PUT", "/api/v1/templates/thermo", thermo(mosquitto.url))
    async with tui_for(appliance_up) as (app, pilot):
        await pilot.press("2")
        screen = app.screen
        assert isinstance(screen, GroupsScreen)

        await pilot.press("n")
        form = await until(pilot, lambda: isinstance(app.screen, FormModal) and app.screen)
        form.query_one("#field-name", Input).value = "lab"
        form.query_one("#field-count", Input).value = "5"
        await pilot.click("#submit")
        await until(pilot, lambda: "lab" in screen.query_one("#groups").shown_keys, what="row")

        await pilot.press("s")
        await until(pilot, lambda: screen.rate_of("lab") > 0, what="sent/s above 0")
        group = await api_async(appliance_up, "GET", "/api/v1/groups/lab")
        assert group["state"] == "running" and group["count"] == 5

        await pilot.press("x")  # stop asks first; Cancel is the default
        await pilot.press("y")
        await until(
            pilot, lambda: str(screen.query_one("#groups").value("lab", "state")) == "stopped"
        )


async def test_bad_count_is_refused_in_place(appliance_up, mosquitto) -> None:
    await api_async(appliance_up, "PUT", "/api/v1/templates/thermo", thermo(mosquitto.url))
    async with tui_for(appliance_up) as (app, pilot):
        await pilot.press("2")
        screen = app.screen
        await pilot.press("n")
        form = await until(pilot, lambda: isinstance(app.screen, FormModal) and app.screen)
        form.query_one("#field-name", Input).value = "lab"
        form.query_one("#field-count", Input).value = "0"
        await pilot.click("#submit")
        status = screen.query_one("#status")
        await until(pilot, lambda: "count" in str(status.render()), what="the 400 in place")
        assert app.is_running
