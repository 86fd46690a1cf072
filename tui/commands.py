"""Command-palette entries (`:`): go to a screen, or run any key the current screen allows."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

from textual.app import App, SystemCommand
from textual.screen import Screen

from tui.widgets.nav import SCREENS


def commands_for(app: App[Any], screen: Screen[Any]) -> Iterable[SystemCommand]:
    for i, (mode, title) in enumerate(SCREENS, start=1):
        yield SystemCommand(f"Go to {title}", f"key {i}", partial(app.switch_mode, mode))
    seen: set[str] = set()
    for active in screen.active_bindings.values():
        b = active.binding
        if not active.enabled or not b.show or not b.description or b.action in seen:
            continue
        if b.action.startswith("app.") or b.action in ("help", "filter"):
            continue
        seen.add(b.action)
        yield SystemCommand(
            b.description,
            f"key {app.get_key_display(b)}",
            partial(screen.run_action, b.action),
        )
