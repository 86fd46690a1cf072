"""Templates: the org's device templates; enter opens one in the editor, n starts a new one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable

from appliance.contract.groups import TEMPLATES_PATH, Template
from tui.screens.base import AppScreen, Failed
from tui.widgets.form import Field, FormModal
from tui.widgets.table import Col, ResourceTable

COLUMNS = (
    Col("template", min=8),
    Col("version", num=True),
    Col("transport", min=10),
    Col("interval", min=5, drop=2),
    Col("fields", num=True, drop=1),
    Col("updated", min=20, drop=3),
)


def template_row(t: Template, at: Callable[[Any], str]) -> tuple[str, ...]:
    # The spec is the template language's own document (agent/template.py), not a contract
    # type: a part it leaves out shows as empty.
    transport = t.spec.get("transport") or {}
    kind = next(iter(transport), "?")
    target = (transport.get(kind) or {}).get("url", "")
    return (
        t.name,
        str(t.version),
        f"{kind} {target}".strip(),
        str(t.spec.get("interval", "")),
        str(len(t.spec.get("payload") or {})),
        at(t.updated_at),
    )


class TemplatesScreen(AppScreen):
    MODE = "templates"
    POLL_S = 10.0
    NEEDS = {"new_template": "operator"}
    BINDINGS = [Binding("enter", "open", "Edit"), Binding("n", "new_template", "New")]

    def __init__(self) -> None:
        super().__init__()
        self._templates: dict[str, Template] = {}

    def compose_body(self) -> ComposeResult:
        yield ResourceTable(*COLUMNS, id="templates")

    async def load(self) -> None:
        templates = await self.call_as(list[Template], "GET", TEMPLATES_PATH)
        if not isinstance(templates, Failed):
            self.show_templates(templates)
            self.fresh()

    def show_templates(self, templates: list[Template]) -> None:
        self._templates = {t.name: t for t in templates}
        self.query_one("#templates", ResourceTable).show(
            {t.name: template_row(t, self.mm.time.at) for t in templates}
        )

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        key = self.query_one("#templates", ResourceTable).selected_key
        if key is not None and key in self._templates:
            self._open(key, self._templates[key].spec)

    def _open(self, name: str, spec: dict[str, Any] | None) -> None:
        from tui.screens.template_editor import TemplateEditor

        self.app.push_screen(TemplateEditor(name, spec))

    def action_new_template(self) -> None:
        self.spawn(self._new, group="action")

    async def _new(self) -> None:
        values = await self.app.push_screen_wait(
            FormModal(
                "New template", [Field("name", "Name", placeholder="thermo")], submit_label="Edit"
            )
        )
        if values and values["name"]:
            self._open(values["name"], None)
