"""One agent in full: identity, capacity, revision and its last errors."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from tui.screens.base import DetailScreen

FIELDS = (
    "agent_id",
    "hostname",
    "arch",
    "version",
    "online",
    "offline_since",
    "cores",
    "mem_mb",
    "capacity",
    "assigned",
    "free",
    "cpu_percent",
    "rss_mb",
    "revision",
    "reported_revision",
    "last_seen",
)


class AgentDetail(DetailScreen):
    def __init__(self, agent: dict[str, Any]) -> None:
        super().__init__("fleet")
        self.agent = agent

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(classes="detail"):
            yield Static(f"[b]Agent {self.agent.get('agent_id')}[/]", classes="dialog-title")
            for name in FIELDS:
                if name in self.agent:
                    yield Static(f"{name:>18}  {self.agent[name]}")
            errors = self.agent.get("errors") or []
            yield Static(f"{'errors':>18}  {len(errors)}")
            for e in errors[-10:]:
                yield Static(f"{'':>18}  [red]{e}[/]")
