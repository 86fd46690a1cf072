"""Fleet: agents with presence, version, arch, load and rate; enrollment tokens."""

from __future__ import annotations

import msgspec
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from appliance.contract.fleet import AGENTS_PATH, ENROLLMENT_TOKENS_PATH, Agent, EnrollmentToken
from appliance.contract.groups import GROUPS_PATH, Group
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


def agent_row(a: Agent, sent_per_s: float) -> tuple[str | Text, ...]:
    return (
        a.agent_id,
        a.hostname or "-",
        Text("online", style="green") if a.online else Text("offline", style="red"),
        a.version or "-",
        a.arch or "-",
        f"{f.count(a.assigned)}/{f.count(a.capacity)}",
        f"{a.cpu_percent:.1f}",
        f"{a.rss_mb:.1f}",
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
        self._agents: dict[str, Agent] = {}
        self._groups: list[Group] = []

    def compose_body(self) -> ComposeResult:
        yield Static("", id="summary", classes="summary")
        yield ResourceTable(*COLUMNS, id="agents")

    async def load(self) -> None:
        agents = await self.call_as(list[Agent], "GET", AGENTS_PATH)
        groups = await self.call_as(list[Group], "GET", GROUPS_PATH)
        if isinstance(agents, Failed) or isinstance(groups, Failed):
            return
        self._agents = {a.agent_id: a for a in agents}
        self._groups = groups
        self.on_live(self.mm.model)
        self.fresh()

    def on_live(self, model: LiveModel) -> None:
        merged = dict(self._agents)
        for agent_id, live in model.agents.items():
            known = merged.get(agent_id) or Agent(agent_id=agent_id, hostname=live.hostname)
            merged[agent_id] = msgspec.structs.replace(
                known,
                online=live.online,
                capacity=live.capacity,
                assigned=live.assigned,
                cpu_percent=live.cpu_percent,
                rss_mb=live.rss_mb,
            )
        rates = {name: g.sent_per_s for name, g in model.groups.items()}
        self.show_agents(list(merged.values()), agent_rates(self._groups, rates))
        if model.received_at is not None:
            self.fresh(model.received_at)
        if model.error:
            self.status(model.error, error=True)

    def show_agents(self, agents: list[Agent], rates: dict[str, float]) -> None:
        """Render agents (REST and live fields merged) with their sent/s."""
        table = self.query_one("#agents", ResourceTable)
        table.show({a.agent_id: agent_row(a, rates.get(a.agent_id, 0.0)) for a in agents})
        online = sum(1 for a in agents if a.online)
        mocks = sum(a.assigned for a in agents)
        capacity = sum(a.capacity for a in agents if a.online)
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

        self.app.push_screen(AgentDetail(self._agents.get(key) or Agent(agent_id=key)))

    def action_enroll_token(self) -> None:
        self.spawn(self._enroll_token, group="enroll")

    async def _enroll_token(self) -> None:
        answer = await self.call_as(EnrollmentToken, "POST", ENROLLMENT_TOKENS_PATH)
        if isinstance(answer, Failed):
            return
        self.status("enrollment token created; it is shown once")
        expires = self.mm.time.at(answer.expires_at)
        await self.app.push_screen(TokenModal(answer, expires))
