"""A viewer sees no approve key (nor any other change), and the appliance refuses anyway."""

from __future__ import annotations

import urllib.error

import pytest

from tests.tui.conftest import api_async, tui_for, until
from tui.widgets.confirm import ConfirmModal

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


async def test_a_viewer_cannot_approve(appliance_up) -> None:
    viewer = await api_async(
        appliance_up, "POST", "/api/v1/users", {"name": "vic", "role": "viewer"}
    )
    async with tui_for(appliance_up, viewer["token"]) as (app, pilot):
        assert app.role == "viewer"
        await pilot.press("6")
        screen = app.screen
        keys = {b.binding.action for b in screen.active_bindings.values()}
        assert not keys & {"approve", "void", "adjust", "charge", "charge_now"}
        await pilot.press("a")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ConfirmModal)
        status = screen.query_one("#status")
        await until(pilot, lambda: "admin" in str(status.render()), what="the 403 in place")

        await pilot.press("2")
        keys = {b.binding.action for b in app.screen.active_bindings.values()}
        assert not keys & {"new_group", "start", "stop", "scale"}
        await pilot.press("1")
        keys = {b.binding.action for b in app.screen.active_bindings.values()}
        assert "enroll_token" not in keys

    with pytest.raises(urllib.error.HTTPError) as refused:
        await api_async(appliance_up, "POST", "/api/v1/invoices/1/approve", {}, viewer["token"])
    assert refused.value.code == 403
