"""The mockmock TUI: fleet and groups at a glance (screens grow with issue 6)."""

from __future__ import annotations

from pathlib import Path

from textual.app import App, ComposeResult
from textual.widgets import DataTable, Footer, Header, Static

from tui.client import ApiError, ApplianceClient


class MockmockApp(App[None]):
    TITLE = "mockmock"
    BINDINGS = [("q", "quit", "Quit"), ("r", "refresh", "Refresh")]
    CSS = "DataTable { height: 1fr; } #status { height: 1; }"

    def __init__(self, client: ApplianceClient) -> None:
        super().__init__()
        self.client = client

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("connecting…", id="status")
        yield DataTable(id="agents", cursor_type="row")
        yield DataTable(id="groups", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        agents = self.query_one("#agents", DataTable)
        agents.add_columns("agent", "host", "online", "assigned", "capacity", "cpu %", "rss MB")
        groups = self.query_one("#groups", DataTable)
        groups.add_columns(
            "group", "template", "state", "mocks", "sent", "errors", "p50 ms", "p99 ms"
        )
        self.set_interval(2, self.action_refresh)
        self.call_later(self.action_refresh)

    async def action_refresh(self) -> None:
        status = self.query_one("#status", Static)
        try:
            health = await self.client.get("/api/v1/health")
            agents = await self.client.get("/api/v1/agents")
            groups = await self.client.get("/api/v1/groups")
        except ApiError as e:
            status.update(f"[red]{e}[/]")
            return
        status.update(
            f"{self.client.url}  agents online {health['agents_online']}  "
            f"bus {'up' if health['bus_connected'] else 'down'}"
        )
        at = self.query_one("#agents", DataTable)
        at.clear()
        for a in agents:
            at.add_row(
                a["agent_id"],
                a["hostname"],
                "yes" if a["online"] else "no",
                str(a["assigned"]),
                str(a["capacity"]),
                str(a["cpu_percent"]),
                str(a["rss_mb"]),
            )
        gt = self.query_one("#groups", DataTable)
        gt.clear()
        for g in groups:
            gt.add_row(
                g["name"],
                g["template"],
                g["state"],
                str(g["running"]),
                str(g["sent"]),
                str(g["errors"]),
                str(g["lateness_ms"]["p50"]),
                str(g["lateness_ms"]["p99"]),
            )


async def run_tui_async(url: str, token_file: Path) -> None:
    client = ApplianceClient.from_token_file(url, token_file)
    try:
        await MockmockApp(client).run_async()
    finally:
        await client.aclose()


def run_tui(url: str, token_file: Path) -> None:
    import asyncio
    import sys

    try:
        asyncio.run(run_tui_async(url, token_file))
    except ApiError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
