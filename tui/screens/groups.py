"""Groups: create from a template, start, stop, scale; rates, errors, lateness, placement."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from tui.live_model import LiveModel
from tui.screens.base import AppScreen, Failed
from tui.widgets.confirm import ConfirmModal
from tui.widgets.form import Field, FormModal
from tui.widgets.table import ResourceTable

COLUMNS = ("group", "template", "state", "mocks", "sent/s", "sent", "errors", "p50 ms", "p99 ms")
COLUMNS_PLACED = (*COLUMNS, "agents")
STATE_STYLE = {"running": "green", "stopped": "dim", "failed": "red"}
LIVE_FIELDS = ("state", "running", "sent", "errors", "sent_per_s", "lateness_ms")


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
        f"{g.get('running', 0)}/{g.get('count', 0)}",
        f"{float(g.get('sent_per_s', 0.0)):.1f}",
        str(g.get("sent", 0)),
        Text(str(g.get("errors", 0)), style="red" if g.get("errors") else ""),
        f"{float(lateness.get('p50', 0.0)):.1f}",
        f"{float(lateness.get('p99', 0.0)):.1f}",
        placement_text(g),
    )


class GroupsScreen(AppScreen):
    MODE = "groups"
    POLL_S = 3.0
    NEEDS = {"new_group": "operator", "start": "operator", "stop": "operator", "scale": "operator"}
    BINDINGS = [
        Binding("n", "new_group", "New"),
        Binding("s", "start", "Start"),
        Binding("x", "stop", "Stop"),
        Binding("c", "scale", "Scale"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._groups: dict[str, dict[str, Any]] = {}

    def compose_body(self) -> ComposeResult:
        yield Static("", id="summary", classes="summary")
        yield ResourceTable(*COLUMNS_PLACED, id="groups")

    async def load(self) -> None:
        groups = await self.call("GET", "/api/v1/groups")
        if isinstance(groups, Failed):
            return
        self._groups = {g["name"]: g for g in groups}
        self.on_live(self.mm.model)

    def on_live(self, model: LiveModel) -> None:
        merged = []
        for name, g in self._groups.items():
            row = dict(g)
            live = model.groups.get(name)
            if live is not None and live.get("run_id", row.get("run_id")) == row.get("run_id"):
                row.update({k: live[k] for k in LIVE_FIELDS if k in live})
            merged.append(row)
        self.show_groups(merged)
        if model.error:
            self.status(model.error, error=True)

    def show_groups(self, groups: list[dict[str, Any]]) -> None:
        table = self.query_one("#groups", ResourceTable)
        table.show({g["name"]: group_row(g) for g in groups})
        running = [g for g in groups if g.get("state") == "running"]
        self.query_one("#summary", Static).update(
            f"groups [b]{len(running)}[/]/{len(groups)} running   mocks "
            f"[b]{sum(int(g.get('running', 0)) for g in running)}[/]   sent/s "
            f"[b]{sum(float(g.get('sent_per_s', 0.0)) for g in groups):.1f}[/]   errors "
            f"[b]{sum(int(g.get('errors', 0)) for g in groups)}[/]"
        )

    def rate_of(self, name: str) -> float:
        """The sent/s the table shows for ``name`` (tests read this)."""
        table = self.query_one("#groups", ResourceTable)
        try:
            return float(str(table.get_cell(name, "sent/s")))
        except Exception:
            return 0.0

    def _selected(self) -> str | None:
        key = self.query_one("#groups", ResourceTable).selected_key
        if key is None:
            self.status("no group selected", error=True)
        return key

    # --- actions ------------------------------------------------------------------------

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

    def action_start(self) -> None:
        if (name := self._selected()) is not None:
            self.spawn(self._post, name, "start", group="action")

    def action_stop(self) -> None:
        if (name := self._selected()) is not None:
            self.spawn(self._stop, name, group="action")

    async def _stop(self, name: str) -> None:
        count = self._groups.get(name, {}).get("running", 0)
        ok = await self.app.push_screen_wait(
            ConfirmModal(
                f"Stop group {name}?", [f"{count} mocks will stop sending."], confirm_label="Stop"
            )
        )
        if ok:
            await self._post(name, "stop")

    async def _post(self, name: str, verb: str, body: Any = None) -> None:
        answer = await self.call("POST", f"/api/v1/groups/{name}/{verb}", body)
        if not isinstance(answer, Failed):
            self._groups[name] = answer
            self.status(f"{name}: {answer.get('state')} ({verb})")
            self.on_live(self.mm.model)

    def action_scale(self) -> None:
        if (name := self._selected()) is not None:
            self.spawn(self._scale, name, group="action")

    async def _scale(self, name: str) -> None:
        current = str(self._groups.get(name, {}).get("count", ""))
        values = await self.app.push_screen_wait(
            FormModal(f"Scale {name}", [Field("count", "Devices", current, kind="integer")])
        )
        if values and values["count"]:
            await self._post(name, "scale", {"count": int(values["count"])})

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        key = event.row_key.value
        if key is not None and key in self._groups:
            from tui.screens.group_detail import GroupDetail

            self.app.push_screen(GroupDetail(str(key)))
