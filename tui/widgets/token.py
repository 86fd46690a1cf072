"""The one-time enrollment token and the line to paste on the board; shown once."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from appliance.contract.fleet import EnrollmentToken


class TokenModal(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "dismiss", "Close"),
        Binding("c", "copy", "Copy command"),
    ]

    def __init__(self, answer: EnrollmentToken, expires: str = "") -> None:
        super().__init__(classes="modal")
        self.answer = answer
        self.expires = expires or answer.expires_at

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Enrollment token (shown once)", classes="dialog-title")
            yield Static(f"expires {self.expires}")
            yield Static("Run on the board:")
            yield Static(self.answer.command, id="command", classes="command")
            if self.answer.warning:  # e.g. the API listens on 127.0.0.1 only
                yield Static(f"note: {self.answer.warning}", id="warning")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Copy (c)", id="copy")
                yield Button("Close", id="close", variant="primary")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "copy":
            self.action_copy()
        else:
            self.dismiss()

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.answer.command)
        self.notify("copied the enroll command (if the terminal allows OSC 52)")
