"""Live traffic: per group, sparklines of sent/s, errors/s and lateness p99, from the feed."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from tui import format as f
from tui.live_model import LiveModel
from tui.screens.base import AppScreen
from tui.widgets.group_spark import GroupSpark


class LiveScreen(AppScreen):
    MODE = "live"

    def compose_body(self) -> ComposeResult:
        yield Static("waiting for the live feed…", id="summary", classes="summary")
        yield VerticalScroll(id="sparks")

    def on_live(self, model: LiveModel) -> None:
        t = model.totals
        self.query_one("#summary", Static).update(
            f"agents [b]{t.agents_online}[/] online  groups [b]{t.groups_running}[/] running"
            f"  mocks [b]{f.count(t.mocks_running)}[/]  sent/s [b]{f.rate(t.sent_per_s)}[/]"
            + (f" ({model.rate_window_s:g}s)" if model.rate_window_s else "")
            + f"  errors [b]{f.count(t.errors)}[/]"
            + (f"   [red]{model.error}[/]" if model.error else "")
        )
        if model.received_at is not None:
            self.fresh(model.received_at)
        box = self.query_one("#sparks", VerticalScroll)
        flt = self.query_one("#filter").value.strip().lower()  # type: ignore[attr-defined]
        names = [n for n in model.groups if not flt or flt in n.lower()]
        have = {w.group_name: w for w in box.query(GroupSpark)}
        for name, widget in have.items():
            if name not in names:
                widget.remove()
        for name in names:
            widget = have.get(name)
            if widget is None:
                widget = GroupSpark(name)
                box.mount(widget)
                widget.call_after_refresh(self._fill, widget, model)
            else:
                self._fill(widget, model)

    def _fill(self, widget: GroupSpark, model: LiveModel) -> None:
        group = model.groups.get(widget.group_name)
        series = model.series.get(widget.group_name)
        if group is not None and series is not None and widget.is_mounted:
            widget.update_from(group, series)

    def on_input_changed(self, event: object) -> None:
        self.on_live(self.mm.model)
