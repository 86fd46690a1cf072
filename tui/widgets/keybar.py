"""The bottom line of keys: the screen's own keys first, as many whole ones as fit.

Textual's Footer lists keys in the order the classes declare them, base class
first, so at 80 columns the keys every screen shares pushed the screen's own
off the edge. Here the screen's keys come first, the shared ones after them,
and ``? Help`` always stays (it lists everything else).
"""

from __future__ import annotations

import contextlib

from textual.content import Content
from textual.dom import NoScreen
from textual.screen import Screen
from textual.widgets import Static

SHARED = ("filter", "quit")
"""Shared actions shown after the screen's own (``help`` is always last)."""
HELP = "help"
GAP = "  "


class KeyBar(Static):
    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._changed)
        self.redraw()

    def on_unmount(self) -> None:
        with contextlib.suppress(NoScreen):
            self.screen.bindings_updated_signal.unsubscribe(self)

    def on_resize(self) -> None:
        self.redraw()

    def _changed(self, screen: Screen[object]) -> None:
        if self.is_attached and screen is self.screen:
            self.call_after_refresh(self.redraw)

    def entries(self) -> list[tuple[str, str]]:
        """(key, what) of every key to show, most important first (help last)."""
        own: list[tuple[str, str]] = []
        shared: dict[str, tuple[str, str]] = {}
        seen: set[str] = set()
        for key, active in self.screen.active_bindings.items():
            b = active.binding
            if not b.show or not b.description or b.action in seen:
                continue
            seen.add(b.action)
            entry = (b.key_display or self.app.get_key_display(b) or key, b.description)
            action = b.action.removeprefix("app.").removeprefix("screen.")
            if action in (*SHARED, HELP):
                shared[action] = entry
            else:
                own.append(entry)
        return own + [shared[a] for a in (*SHARED, HELP) if a in shared]

    def fit(self, width: int) -> list[tuple[str, str]]:
        entries = self.entries()
        if width <= 0:
            return entries
        help_entry = entries[-1:] if entries and entries[-1][1] == "Help" else []
        rest = entries[: len(entries) - len(help_entry)]
        used = sum(len(k) + 1 + len(w) for k, w in help_entry)
        out: list[tuple[str, str]] = []
        for k, w in rest:
            cost = len(k) + 1 + len(w) + len(GAP)
            if used + cost > width:
                break
            out.append((k, w))
            used += cost
        return out + help_entry

    def redraw(self) -> None:
        if not self.is_attached:
            return  # a redraw queued just before its screen went away
        parts: list[str | tuple[str, str]] = []
        for k, w in self.fit(self.size.width - 2):
            parts += [GAP] if parts else []
            parts += [(k, "bold $accent"), f" {w}"]
        self.update(Content.assemble(*parts))
