"""A small modal form: labelled inputs (or a choice), submitted with enter, dropped with esc."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    value: str = ""
    choices: tuple[str, ...] = ()
    """Non-empty: a Select of these instead of a text input."""
    kind: str = "text"
    """``text`` or ``integer`` (the Input restricts what can be typed)."""
    placeholder: str = ""


class FormModal(ModalScreen[dict[str, str] | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, fields: list[Field], *, submit_label: str = "OK") -> None:
        super().__init__(classes="modal")
        self._title = title
        self._fields = fields
        self._submit_label = submit_label

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self._title, classes="dialog-title")
            for f in self._fields:
                yield Label(f.label)
                if f.choices:
                    yield Select(
                        [(c, c) for c in f.choices],
                        value=f.value if f.value in f.choices else f.choices[0],
                        allow_blank=False,
                        id=f"field-{f.name}",
                    )
                else:
                    yield Input(
                        f.value,
                        placeholder=f.placeholder,
                        type="integer" if f.kind == "integer" else "text",
                        id=f"field-{f.name}",
                    )
            yield Static("", id="form-error", classes="error-line")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button(self._submit_label, id="submit", variant="primary")

    def values(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for f in self._fields:
            widget = self.query_one(f"#field-{f.name}")
            value = widget.value if isinstance(widget, Input | Select) else ""
            out[f.name] = "" if value is Select.BLANK else str(value).strip()
        return out

    def show_error(self, message: str) -> None:
        self.query_one("#form-error", Static).update(message)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(self.values())

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(self.values() if event.button.id == "submit" else None)

    def action_cancel(self) -> None:
        self.dismiss(None)
