"""Groups: create from a template, start, stop, scale; rates, errors, lateness, placement."""

from __future__ import annotations

import msgspec
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from appliance.contract.groups import (
    GROUPS_PATH,
    TEMPLATES_PATH,
    Group,
    GroupSpec,
    Template,
)
from tui import format as f
from tui.live_model import LiveModel, merge_live
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


def placement_text(g: Group) -> str:
    return " ".join(
        f"{p.agent_id[:6]}:{p.index_end - p.index_start}" + ("" if p.agent_online else "!")
        for p in g.placement
    )


def group_row(g: Group, sent_per_s: float) -> tuple[str | Text, ...]:
    return (
        g.name,
        g.template,
        Text(g.state, style=STATE_STYLE.get(g.state, "")),
        f"{f.count(g.running)}/{f.count(g.count)}",
        f.rate(sent_per_s),
        f.count(g.sent),
        Text(f.count(g.errors), style="red" if g.errors else ""),
        f.ms(g.lateness_ms.p50),
        f.ms(g.lateness_ms.p99),
        placement_text(g),
    )


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
        self._groups: dict[str, Group] = {}
        self._rates: dict[str, float] = {}

    def compose_body(self) -> ComposeResult:
        yield Static("", id="summary", classes="summary")
        yield ResourceTable(*COLUMNS, id="groups")

    async def load(self) -> None:
        groups = await self.call_as(list[Group], "GET", GROUPS_PATH)
        if isinstance(groups, Failed):
            return
        self._groups = {g.name: g for g in groups}
        self.on_live(self.mm.model)
        self.fresh()

    def on_live(self, model: LiveModel) -> None:
        merged = [merge_live(g, model, self._rates.get(g.name, 0.0)) for g in self._groups.values()]
        self.show_groups([g for g, _ in merged], {g.name: rate for g, rate in merged})
        if model.received_at is not None:
            self.fresh(model.received_at)
        if model.error:
            self.status(model.error, error=True)

    def show_groups(self, groups: list[Group], rates: dict[str, float] | None = None) -> None:
        """Render groups (REST and live figures merged) with their sent/s by name."""
        rates = rates or {}
        if not self._groups:
            self._groups, self._rates = {g.name: g for g in groups}, rates
        table = self.query_one("#groups", ResourceTable)
        table.show({g.name: group_row(g, rates.get(g.name, 0.0)) for g in groups})
        running = [g for g in groups if g.state == "running"]
        window = self.mm.model.rate_window_s
        self.query_one("#summary", Static).update(
            f"groups [b]{len(running)}[/]/{len(groups)} running   mocks "
            f"[b]{f.count(sum(g.running for g in running))}[/]   sent/s "
            f"[b]{f.rate(sum(rates.get(g.name, 0.0) for g in groups))}[/]"
            + (f" ({window:g}s)" if window else "")
            + f"   errors [b]{f.count(sum(g.errors for g in groups))}[/]"
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

    def group_doc(self, name: str) -> Group | None:
        return self._groups.get(name)

    def group_changed(self, doc: Group) -> None:
        self._groups[doc.name] = doc
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
        templates = await self.call_as(list[Template], "GET", TEMPLATES_PATH)
        if isinstance(templates, Failed):
            return
        names = tuple(t.name for t in templates)
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
        spec = GroupSpec(
            template=values["template"],
            count=int(values["count"]),
            seed=int(values["seed"]) if values["seed"] else None,
        )
        path = f"{GROUPS_PATH}/{values['name']}"
        answer = await self.call_as(Group, "PUT", path, msgspec.to_builtins(spec))
        if not isinstance(answer, Failed):
            self.status(f"group {values['name']} created (s starts it)")
            await self.load()
            table = self.query_one("#groups", ResourceTable)
            if values["name"] in table.shown_keys:
                table.move_cursor(row=table.get_row_index(values["name"]))
