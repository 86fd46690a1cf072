"""The audit screen: its chain check follows the appliance's hashes, and against a real
appliance it greets the caller from /me, lists the log and shows the whole chain's verdict."""

from __future__ import annotations

import pytest

from appliance.audit import service as audit
from appliance.contract.audit import AuditLogEntry
from tests.tui.conftest import api_async, screen_text, tui_for, until
from tui.audit_chain import ChainStatus, check
from tui.screens.audit import AuditEntryScreen, AuditScreen
from tui.widgets.table import ResourceTable


def test_the_tuis_chain_check_follows_the_appliances_hashes(appliance_db: str) -> None:
    for i in range(4):
        audit.record("thing.do", actor="user:a", target=f"thing:{i}", after={"n": i, "é": None})
    entries = audit.query(None).entries
    assert check(entries) == ChainStatus(3)
    entries[1].after = {"n": 99, "é": None}  # entries are newest first: this is row 3
    assert check(entries) == ChainStatus(1, broken_id=3)


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_the_audit_screen_lists_and_verifies_the_log(appliance_up) -> None:
    await api_async(appliance_up, "POST", "/api/v1/users", {"name": "ann", "role": "viewer"})
    async with tui_for(appliance_up) as (app, pilot):
        assert app.me is not None and app.me.superuser and app.superuser
        assert app.me.org == "demo" and app.role == "admin"
        await pilot.press("7")
        screen = app.screen
        assert isinstance(screen, AuditScreen)
        await until(
            pilot, lambda: "whole chain ok" in "\n".join(screen_text(app)), what="the verdict"
        )
        created = next(e for e in screen._entries if e.action == "user.create")
        assert isinstance(created, AuditLogEntry) and created.after["name"] == "ann"
        assert "token" not in created.after  # the first token is never logged
        table = screen.query_one("#audit", ResourceTable)
        table.move_cursor(row=table.shown_keys.index(str(created.id)))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, AuditEntryScreen), what="the entry")
        assert f"#{created.id} user.create" in "\n".join(screen_text(app))
