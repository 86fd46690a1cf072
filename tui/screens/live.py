"""Live traffic: per group, sparklines of sent/s, errors/s and lateness p99, from the feed."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

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
            f"agents online [b]{t.get('agents_online', len(model.agents))}[/]   groups running "
            f"[b]{t.get('groups_running', '-')}[/]   mocks [b]{t.get('mocks_running', '-')}[/]   "
            f"sent/s [b]{t.get('sent_per_s', 0.0)}[/]   errors [b]{t.get('errors', 0)}[/]"
            + (f"   [red]{model.error}[/]" if model.error else "")
        )
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
