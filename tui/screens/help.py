"""`?`: the keys of the screen underneath, as its role allows them, and the app's own.

Only keys the app defines (the screen's and the app's) are listed, not the ones a
focused widget brings with it (a table's cursor keys, an editor's).
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

EVERYWHERE = [
    ("1-7", "switch screen: fleet, groups, templates, live, usage, billing, audit"),
    (": ctrl+p", "command palette (every action this screen allows)"),
    ("/", "filter the table; esc clears"),
    ("> <", "sort by the next / previous column (or click a header); ! reverses"),
    ("↑ ↓ pgup pgdn", "move in the table"),
    ("enter", "open the selected row"),
    ("esc", "back / close"),
    ("r", "refresh now"),
    ("q, ctrl+q", "quit"),
]
SHARED = {"help", "filter", "sort(1)", "sort(-1)", "reverse", "back", "reload", "quit"}


def screen_keys(under: Screen[object]) -> list[tuple[str, str]]:
    """(key, what) of the keys ``under`` itself binds and its role may use."""
    rows: list[tuple[str, str]] = []
    seen: set[str] = set()
    for key, active in under.active_bindings.items():
        b = active.binding
        if active.node is not under or not active.enabled or not b.description:
            continue
        if b.action in SHARED or b.action in seen:
            continue
        seen.add(b.action)
        rows.append((b.key_display or key, b.description))
    return rows


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "dismiss", "Close"),
        Binding("question_mark", "dismiss", "Close"),
        Binding("q", "dismiss", "Close"),
    ]

    def __init__(self, under: Screen[object]) -> None:
        super().__init__(classes="modal")
        self.rows = screen_keys(under)
        self._title = getattr(under, "TITLE", None) or type(under).__name__.removesuffix("Screen")

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help"):
            yield Static(f"Keys on this screen ({self._title})", classes="dialog-title")
            if not self.rows:
                yield Static("(none beyond the ones below)")
            for key, what in self.rows:
                yield Static(f"[b]{key:>13}[/]  {what}")
            yield Static("Everywhere", classes="dialog-title")
            for key, what in EVERYWHERE:
                yield Static(f"[b]{key:>13}[/]  {what}")
