"""Groups: create from a template, start, stop, scale; rates, errors, lateness, placement."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from tui import format as f
from tui.live_model import LiveModel
from tui.screens.base import AppScreen, Failed
from tui.screens.group_actions import GroupActions
from tui.widgets.form import Field, FormModal
from tui.widgets.table import Col, ResourceTable

COLUMNS = (
    Col("group", min=8),
    Col("template", min=6, drop=2),
    Col("state", min=7),
    Col("mocks", num=True),
    Col("sent/s", num=True),
    Col("sent", num=True),
    Col("errors", num=True),
    Col("p50 ms", num=True, drop=1),
    Col("p99 ms", num=True),
    Col("agents", min=8, drop=3),
)
STATE_STYLE = {"running": "green", "stopped": "dim", "failed": "red"}


def placement_text(g: dict[str, Any]) -> str:
    placed = g.get("placement") or []
    return " ".join(
        f"{p['agent_id'][:6]}:{p['index_end'] - p['index_start']}"
        + ("" if p.get("agent_online", True) else "!")
        for p in placed
    )


def group_row(g: dict[str, Any]) -> tuple[str | Text, ...]:
    lateness = g.get("lateness_ms") or {}
    state = str(g.get("state", "?"))
    return (
        str(g["name"]),
        str(g.get("template", "")),
        Text(state, style=STATE_STYLE.get(state, "")),
        f"{f.count(g.get('running', 0))}/{f.count(g.get('count', 0))}",
        f.rate(g.get("sent_per_s", 0.0)),
        f.count(g.get("sent", 0)),
        Text(f.count(g.get("errors", 0)), style="red" if g.get("errors") else ""),
        f.ms(lateness.get("p50", 0.0)),
        f.ms(lateness.get("p99", 0.0)),
        placement_text(g),
    )


def merge_live(g: dict[str, Any], model: LiveModel) -> dict[str, Any]:
    """A group's REST document with the feed's newer figures of the same run."""
    row = dict(g)
    live = model.groups.get(str(g["name"]))
    if live is not None and live.run_id == row.get("run_id", live.run_id):
        row.update(
            state=live.state,
            running=live.running,
            sent=live.sent,
            errors=live.errors,
            sent_per_s=live.sent_per_s,
            lateness_ms={
                **(row.get("lateness_ms") or {}),
                "p50": live.lateness_ms.p50,
                "p99": live.lateness_ms.p99,
            },
        )
    return row


class GroupsScreen(GroupActions, AppScreen):
    MODE = "groups"
    POLL_S = 3.0
    NEEDS = {**GroupActions.ACTION_ROLES, "new_group": "operator"}
    BINDINGS = [
        Binding("enter", "open", "Open"),
        Binding("l", "tail", "Logs"),
        *GroupActions.ACTION_BINDINGS,
        Binding("n", "new_group", "New"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._groups: dict[str, dict[str, Any]] = {}

    def compose_body(self) -> ComposeResult:
        yield Static("", id="summary", classes="summary")
        yield ResourceTable(*COLUMNS, id="groups")

    async def load(self) -> None:
        groups = await self.call("GET", "/api/v1/groups")
        if isinstance(groups, Failed):
            return
        self._groups = {g["name"]: g for g in groups}
        self.on_live(self.mm.model)
        self.fresh()

    def on_live(self, model: LiveModel) -> None:
        self.show_groups([merge_live(g, model) for g in self._groups.values()])
        if model.received_at is not None:
            self.fresh(model.received_at)
        if model.error:
            self.status(model.error, error=True)

    def show_groups(self, groups: list[dict[str, Any]]) -> None:
        if not self._groups:
            self._groups = {g["name"]: g for g in groups}
        table = self.query_one("#groups", ResourceTable)
        table.show({g["name"]: group_row(g) for g in groups})
        running = [g for g in groups if g.get("state") == "running"]
        window = self.mm.model.rate_window_s
        self.query_one("#summary", Static).update(
            f"groups [b]{len(running)}[/]/{len(groups)} running   mocks "
            f"[b]{f.count(sum(int(g.get('running', 0)) for g in running))}[/]   sent/s "
            f"[b]{f.rate(sum(float(g.get('sent_per_s', 0.0)) for g in groups))}[/]"
            + (f" ({window:g}s)" if window else "")
            + f"   errors [b]{f.count(sum(int(g.get('errors', 0)) for g in groups))}[/]"
        )

    def rate_of(self, name: str) -> float:
        """The sent/s the table shows for ``name`` (tests read this)."""
        table = self.query_one("#groups", ResourceTable)
        try:
            return float(str(table.value(name, "sent/s")).replace(",", ""))
        except (KeyError, ValueError):
            return 0.0

    # --- GroupActions -------------------------------------------------------------------

    def selected_group(self) -> str | None:
        key = self.query_one("#groups", ResourceTable).selected_key
        if key is None:
            self.status("no group selected", error=True)
        return key

    def group_doc(self, name: str) -> dict[str, Any]:
        return self._groups.get(name, {})

    def group_changed(self, doc: dict[str, Any]) -> None:
        self._groups[doc["name"]] = doc
        self.on_live(self.mm.model)

    # --- keys ---------------------------------------------------------------------------

    def action_open(self) -> None:
        if (name := self.selected_group()) is not None:
            from tui.screens.group_detail import GroupDetail

            self.app.push_screen(GroupDetail(name))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value in self._groups:
            self.action_open()

    def action_new_group(self) -> None:
        self.spawn(self._new_group, group="action")

    async def _new_group(self) -> None:
        templates = await self.call("GET", "/api/v1/templates")
        if isinstance(templates, Failed):
            return
        names = tuple(t["name"] for t in templates)
        if not names:
            self.status("no templates yet: create one on the Templates screen (3)", error=True)
            return
        form = FormModal(
            "New group",
            [
                Field("name", "Name", placeholder="thermo-fleet"),
                Field("template", "Template", choices=names),
                Field("count", "Devices", "10", kind="integer"),
                Field("seed", "Seed (optional)", kind="integer"),
            ],
            submit_label="Create",
        )
        values = await self.app.push_screen_wait(form)
        if not values:
            return
        if not values["name"] or not values["count"]:
            self.status("name and devices are required", error=True)
            return
        body: dict[str, Any] = {"template": values["template"], "count": int(values["count"])}
        if values["seed"]:
            body["seed"] = int(values["seed"])
        answer = await self.call("PUT", f"/api/v1/groups/{values['name']}", body)
        if not isinstance(answer, Failed):
            self.status(f"group {values['name']} created (s starts it)")
            await self.load()
            table = self.query_one("#groups", ResourceTable)
            if values["name"] in table.shown_keys:
                table.move_cursor(row=table.get_row_index(values["name"]))
