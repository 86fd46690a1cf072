"""The one-line bar of screens: which one is open and the digit that opens each."""

from __future__ import annotations

from textual.widgets import Static

SCREENS = (
    ("fleet", "Fleet"),
    ("groups", "Groups"),
    ("templates", "Templates"),
    ("live", "Live"),
    ("usage", "Usage"),
    ("billing", "Billing"),
    ("audit", "Audit"),
)


class NavBar(Static):
    def __init__(self, current: str) -> None:
        super().__init__(self.markup_for(current), classes="nav")

    @staticmethod
    def markup_for(current: str) -> str:
        parts = []
        for i, (mode, title) in enumerate(SCREENS, start=1):
            label = f"{i} {title}"
            parts.append(f"[reverse b] {label} [/]" if mode == current else f" {label} ")
        return "".join(parts)
