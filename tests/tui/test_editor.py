"""The template editor on a real appliance: the appliance checks and previews the draft (the
TUI runs no agent code), a YAML mistake is one plain sentence at its line, Tab leaves the
editor and ctrl+p stays the command palette's."""

from __future__ import annotations

import pytest
from textual.command import CommandPalette
from textual.widgets import Input, TextArea

from tests.tui.conftest import api_async, tui_for, until
from tui.screens.template_editor import TemplateEditor
from tui.widgets.form import FormModal

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

GOOD = """\
transport:
  mqtt: {url: "mqtt://127.0.0.1:1", topic: "ed/{device_id}", qos: 0}
interval: 1s
payload:
  seq: {counter: {}}
  temp:
    uniform: {min: 18.0, max: 26.0}
"""


async def open_editor(app, pilot) -> TemplateEditor:
    await pilot.press("3")
    await pilot.press("n")
    form = await until(pilot, lambda: isinstance(app.screen, FormModal) and app.screen)
    form.query_one("#field-name", Input).value = "ed"
    await pilot.click("#submit")
    return await until(pilot, lambda: isinstance(app.screen, TemplateEditor) and app.screen)


async def test_check_preview_and_save_through_the_appliance(appliance_up) -> None:
    async with tui_for(appliance_up, size=(100, 30)) as (app, pilot):
        editor = await open_editor(app, pilot)
        area = editor.query_one("#editor", TextArea)

        area.text = "interval: 1s\npayload:\n  temp: uniform: {min: 1}\n"
        await pilot.press("ctrl+t")
        problem = await until(pilot, lambda: editor.problem, what="the YAML problem")
        assert problem.line == 3 and problem.path == ""
        sentence = str(editor.query_one("#field-error").render())
        assert sentence.startswith("line 3: not valid YAML, column ") and "\n" not in sentence
        assert "a colon where a value was expected" in sentence
        assert area.selection.start[0] == 2 == area.selection.end[0]

        area.text = GOOD.replace("uniform:", "unifrom:")
        await pilot.press("ctrl+t")
        await until(pilot, lambda: editor.problem and editor.problem.path.endswith("temp"))
        assert editor.problem is not None and editor.problem.line == 6
        assert "unknown generator 'unifrom'" in str(editor.query_one("#field-error").render())

        area.text = GOOD
        await pilot.press("ctrl+r")
        await until(pilot, lambda: len(editor.preview_rows) == 9, what="3 x 3 messages")
        assert all("ed-0000" in row for row in editor.preview_rows)
        assert "nothing was sent" in str(editor.query_one("#status").render())

        await pilot.press("ctrl+s")
        await until(pilot, lambda: "saved ed" in str(editor.query_one("#status").render()))
        saved = await api_async(appliance_up, "GET", "/api/v1/templates/ed")
        assert list(saved["spec"]["payload"]) == ["seq", "temp"]


async def test_tab_leaves_the_editor_and_ctrl_p_is_the_palette(appliance_up) -> None:
    async with tui_for(appliance_up, size=(100, 30)) as (app, pilot):
        editor = await open_editor(app, pilot)
        area = editor.query_one("#editor", TextArea)
        assert app.focused is area
        before = area.text
        await pilot.press("tab")
        assert app.focused is not area and area.text == before

        area.focus()
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette), what="the palette")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is editor)
        assert editor.preview_rows == []  # ctrl+p did not preview
