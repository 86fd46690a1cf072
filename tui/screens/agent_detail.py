"""One agent: identity, capacity, revision, the device ranges placed on it and its errors;
`enter` on a range opens that group."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from appliance.contract.fleet import AGENTS_PATH, Agent
from appliance.contract.inspect import AgentRange, AgentRanges
from tui import format as f
from tui.screens.base import DetailScreen, Failed
from tui.widgets.table import Col, ResourceTable

RANGE_COLUMNS = (
    Col("group", min=8),
    Col("devices", num=True),
    Col("range", min=5),
    Col("run", num=True, drop=2),
    Col("state", min=7),
    Col("running", num=True),
    Col("sent", num=True),
    Col("errors", num=True),
    Col("lease until", min=24, drop=3),
    Col("last error", min=10, drop=1),
)
TIMES = ("offline_since", "last_seen")


def range_row(r: AgentRange, at: Any) -> tuple[str | Text, ...]:
    return (
        r.group,
        f.count(r.index_end - r.index_start),
        f"{r.index_start}-{r.index_end - 1}",
        str(r.run_id),
        r.state or "-",
        f.count(r.running),
        f.count(r.sent),
        Text(f.count(r.errors), style="red" if r.errors else ""),
        at(r.lease_until, seconds=True),
        Text(r.last_error, style="red"),
    )


class AgentDetail(DetailScreen):
    POLL_S = 5.0
    BINDINGS = [Binding("enter", "open_group", "Open group")]

    def __init__(self, agent: Agent) -> None:
        super().__init__("fleet")
        self.agent = agent
        self.ranges: AgentRanges | None = None

    def compose_body(self) -> ComposeResult:
        yield Static("", id="identity", classes="summary")
        yield ResourceTable(*RANGE_COLUMNS, id="ranges")
        yield Static("", id="agent-errors", classes="error-line")

    def on_mount(self) -> None:
        super().on_mount()
        self.show_identity()

    def show_identity(self) -> None:
        a = self.agent
        t = self.mm.time
        state = "[green]online[/]" if a.online else "[red]offline[/]"
        since = f" since {t.at(a.offline_since)}" if a.offline_since else ""
        # 0 cores, RAM or revision: not reported (or published) yet, shown as "-".
        self.query_one("#identity", Static).update(
            f"[b]Agent {a.agent_id}[/]  {state}{since}  host {a.hostname or '-'}"
            f"  {a.arch or '-'}  v{a.version or '-'}  cores {a.cores or '-'}"
            f"  RAM {f.count(a.mem_mb or None)} MB\n"
            f"mocks {f.count(a.assigned)}/{f.count(a.capacity)}"
            f"  cpu {a.cpu_percent:.1f}%  rss {a.rss_mb:.1f} MB"
            f"  revision {a.reported_revision or '-'}/{a.revision or '-'}"
            f"  last seen {t.at(a.last_seen, seconds=True)}"
        )

    async def load(self) -> None:
        agent_id = self.agent.agent_id
        agents = await self.call_as(list[Agent], "GET", AGENTS_PATH)
        if not isinstance(agents, Failed):
            self.agent = next((a for a in agents if a.agent_id == agent_id), self.agent)
            self.show_identity()
        ranges = await self.call_as(AgentRanges, "GET", f"{AGENTS_PATH}/{agent_id}/ranges")
        if not isinstance(ranges, Failed):
            self.show_ranges(ranges)
            self.fresh()

    def show_ranges(self, ranges: AgentRanges) -> None:
        self.ranges = ranges
        at = self.mm.time.at
        self.query_one("#ranges", ResourceTable).show(
            {f"{r.group}:{r.index_start}": range_row(r, at) for r in ranges.ranges}
        )
        errors = ranges.errors or self.agent.errors
        lines = [f"[red]{e}[/]" for e in errors[-6:]] or ["no errors"]
        if not ranges.ranges:
            lines.insert(0, "no device ranges placed on this agent")
        self.query_one("#agent-errors", Static).update("\n".join(lines))

    def action_open_group(self) -> None:
        key = self.query_one("#ranges", ResourceTable).selected_key
        if key is None:
            return
        from tui.screens.group_detail import GroupDetail

        self.app.push_screen(GroupDetail(key.rsplit(":", 1)[0]))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open_group()
