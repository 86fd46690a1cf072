"""`?`: the keys of the screen underneath, as its role allows them, and the global ones."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

GLOBAL = [
    ("1-7", "switch screen: fleet, groups, templates, live, usage, billing, audit"),
    (":", "command palette (every action this screen allows)"),
    ("/", "filter the table; esc clears"),
    ("enter", "open the selected row"),
    ("esc", "back / close"),
    ("q, ctrl+q", "quit"),
]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "dismiss", "Close"),
        Binding("question_mark", "dismiss", "Close"),
        Binding("q", "dismiss", "Close"),
    ]

    def __init__(self, under: Screen[object]) -> None:
        super().__init__(classes="modal")
        seen: set[str] = set()
        self._rows: list[tuple[str, str]] = []
        for key, active in under.active_bindings.items():
            b = active.binding
            if not active.enabled or not b.description or b.description in seen:
                continue
            seen.add(b.description)
            self._rows.append((b.key_display or key, b.description))

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help"):
            yield Static("Keys on this screen", classes="dialog-title")
            for key, what in self._rows:
                yield Static(f"[b]{key:>10}[/]  {what}")
            yield Static("Everywhere", classes="dialog-title")
            for key, what in GLOBAL:
                yield Static(f"[b]{key:>10}[/]  {what}")
