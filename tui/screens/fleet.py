"""Fleet: agents with presence, version, arch, load and rate; enrollment tokens."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from tui import format as f
from tui.live_model import LiveModel, agent_rates
from tui.screens.base import AppScreen, Failed
from tui.widgets.table import Col, ResourceTable
from tui.widgets.token import TokenModal

COLUMNS = (
    Col("agent", min=13),
    Col("host", min=6, drop=2),
    Col("state", min=7),
    Col("version", min=5, drop=4),
    Col("arch", min=5, drop=3),
    Col("mocks/cap", num=True),
    Col("cpu %", num=True),
    Col("rss MB", num=True, drop=1),
    Col("sent/s", num=True),
)


def agent_row(a: dict[str, Any], sent_per_s: float) -> tuple[str | Text, ...]:
    online = a.get("online")
    return (
        str(a.get("agent_id", "")),
        str(a.get("hostname") or "-"),
        Text("online", style="green") if online else Text("offline", style="red"),
        str(a.get("version") or "-"),
        str(a.get("arch") or "-"),
        f"{f.count(a.get('assigned', 0))}/{f.count(a.get('capacity', 0))}",
        f"{a.get('cpu_percent') or 0:.1f}",
        f"{a.get('rss_mb') or 0:.1f}",
        f.rate(sent_per_s),
    )


class FleetScreen(AppScreen):
    MODE = "fleet"
    POLL_S = 5.0
    NEEDS = {"enroll_token": "admin"}
    BINDINGS = [
        Binding("enter", "detail", "Open"),
        Binding("t", "enroll_token", "Enroll token"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._agents: dict[str, dict[str, Any]] = {}
        self._groups: list[dict[str, Any]] = []

    def compose_body(self) -> ComposeResult:
        yield Static("", id="summary", classes="summary")
        yield ResourceTable(*COLUMNS, id="agents")

    async def load(self) -> None:
        agents = await self.call("GET", "/api/v1/agents")
        groups = await self.call("GET", "/api/v1/groups")
        if isinstance(agents, Failed) or isinstance(groups, Failed):
            return
        self._agents = {a["agent_id"]: a for a in agents}
        self._groups = groups
        self.on_live(self.mm.model)
        self.fresh()

    def on_live(self, model: LiveModel) -> None:
        merged = {k: dict(v) for k, v in self._agents.items()}
        for agent_id, live in model.agents.items():
            row = merged.setdefault(agent_id, {"agent_id": agent_id})
            row.update(
                online=live.online,
                capacity=live.capacity,
                assigned=live.assigned,
                cpu_percent=live.cpu_percent,
                rss_mb=live.rss_mb,
            )
            row.setdefault("hostname", live.hostname)
        rates = {name: g.sent_per_s for name, g in model.groups.items()}
        self.show_agents(list(merged.values()), agent_rates(self._groups, rates))
        if model.received_at is not None:
            self.fresh(model.received_at)
        if model.error:
            self.status(model.error, error=True)

    def show_agents(self, agents: list[dict[str, Any]], rates: dict[str, float]) -> None:
        """Render agents (REST and live fields merged) with their sent/s."""
        table = self.query_one("#agents", ResourceTable)
        table.show({a["agent_id"]: agent_row(a, rates.get(a["agent_id"], 0.0)) for a in agents})
        online = sum(1 for a in agents if a.get("online"))
        mocks = sum(int(a.get("assigned", 0)) for a in agents)
        capacity = sum(int(a.get("capacity", 0)) for a in agents if a.get("online"))
        self.query_one("#summary", Static).update(
            f"agents [b]{online}[/]/{len(agents)} online   mocks [b]{f.count(mocks)}[/]/"
            f"{f.count(capacity)}   sent/s [b]{f.rate(sum(rates.values()))}[/]"
        )

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_detail()

    def action_detail(self) -> None:
        table = self.query_one("#agents", ResourceTable)
        key = table.selected_key
        if key is None:
            return
        from tui.screens.agent_detail import AgentDetail

        self.app.push_screen(AgentDetail(self._agents.get(key) or {"agent_id": key}))

    def action_enroll_token(self) -> None:
        self.spawn(self._enroll_token, group="enroll")

    async def _enroll_token(self) -> None:
        answer = await self.call("POST", "/api/v1/enrollment-tokens")
        if isinstance(answer, Failed):
            return
        self.status("enrollment token created; it is shown once")
        await self.app.push_screen(TokenModal(answer, self.mm.time.at(answer.get("expires_at"))))
