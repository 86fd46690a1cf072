"""One group: its figures, where it is placed, its last errors and its rate over time."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Sparkline, Static

from tui.live_model import LiveModel
from tui.screens.base import DetailScreen, Failed
from tui.widgets.table import ResourceTable


class GroupDetail(DetailScreen):
    POLL_S = 3.0

    def __init__(self, name: str) -> None:
        super().__init__("groups")
        self.name_ = name
        self._doc: dict[str, Any] = {}

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(classes="detail"):
            yield Static(f"[b]Group {self.name_}[/]", classes="dialog-title")
            yield Static("", id="figures")
            yield Static("sent/s", classes="spark-label")
            yield Sparkline([], id="spark-sent")
            yield Static("placement", classes="dialog-title")
            yield ResourceTable("agent", "online", "devices", "range", id="placement")
            yield Static("", id="errors")

    async def load(self) -> None:
        doc = await self.call("GET", f"/api/v1/groups/{self.name_}")
        if isinstance(doc, Failed):
            return
        self.show_group(doc)

    def show_group(self, doc: dict[str, Any]) -> None:
        self._doc = doc
        lat = doc.get("lateness_ms") or {}
        self.query_one("#figures", Static).update(
            f"template {doc.get('template')}  state [b]{doc.get('state')}[/]"
            f"  run {doc.get('run_id')}  mocks {doc.get('running')}/{doc.get('count')}"
            f"  seed {doc.get('seed')}\n"
            f"entitlement {doc.get('entitlement')}  sent {doc.get('sent')}"
            f"  errors {doc.get('errors')}"
            f"  lateness p50 {lat.get('p50')} p99 {lat.get('p99')} max {lat.get('max')} ms"
            f"  device-s {doc.get('device_seconds')}"
        )
        self.query_one("#placement", ResourceTable).show(
            {
                f"{p['agent_id']}:{p['index_start']}": (
                    p["agent_id"],
                    "yes" if p.get("agent_online") else "no",
                    str(p["index_end"] - p["index_start"]),
                    f"{p['index_start']}-{p['index_end'] - 1}",
                )
                for p in doc.get("placement") or []
            }
        )
        errors = doc.get("last_errors") or []
        self.query_one("#errors", Static).update(
            "\n".join(f"[red]{e}[/]" for e in errors[-8:]) if errors else "no errors"
        )

    def on_live(self, model: LiveModel) -> None:
        series = model.series.get(self.name_)
        if series is not None:
            self.query_one("#spark-sent", Sparkline).data = list(series.sent_per_s)
