"""One template as YAML: validate locally (error at its line), preview seeded, save (PUT)."""

from __future__ import annotations

import json
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, Static, TextArea

from tui import template_tools as tt
from tui.screens.base import DetailScreen, Failed


class TemplateEditor(DetailScreen):
    NEEDS = {"save": "operator"}
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("ctrl+t", "validate", "Validate", priority=True),
        Binding("ctrl+p", "preview", "Preview", priority=True),
        Binding("escape", "back", "Back", priority=True),
    ]

    def __init__(self, name: str, spec: dict[str, Any] | None) -> None:
        super().__init__("templates")
        self.template_name = name
        self._text = tt.to_text(spec) if spec else tt.SKELETON

    def compose_body(self) -> ComposeResult:
        yield Static(
            f"[b]Template {self.template_name}[/]  ctrl+t validate · ctrl+p preview · "
            "ctrl+s save · esc back",
            classes="summary",
        )
        with Horizontal(id="editor-row"):
            yield TextArea(self._text, id="editor", show_line_numbers=True, tab_behavior="indent")
            with Vertical(id="preview-pane"):
                with Horizontal(id="seed-row"):
                    yield Label("seed ")
                    yield Input("1", id="seed", type="integer")
                yield TextArea("", id="preview", read_only=True, show_line_numbers=False)
        yield Static("", id="field-error", classes="error-line")

    def on_mount(self) -> None:
        self.query_one("#editor", TextArea).focus()

    @property
    def text(self) -> str:
        return self.query_one("#editor", TextArea).text

    def show_field_error(self, error: tt.FieldError | None) -> None:
        box = self.query_one("#field-error", Static)
        editor = self.query_one("#editor", TextArea)
        if error is None:
            box.update("[green]valid[/]")
            return
        box.update(f"[red]{error}[/]")
        if error.line is not None:
            row = error.line
            editor.selection = editor.selection.__class__(
                (row, 0), (row, len(editor.document.get_line(row)))
            )
            editor.scroll_cursor_visible(center=True)
            editor.focus()

    def action_validate(self) -> dict[str, Any] | None:
        result = tt.validate(self.template_name, self.text)
        if isinstance(result, tt.FieldError):
            self.show_field_error(result)
            return None
        self.show_field_error(None)
        return result

    def action_preview(self) -> None:
        spec = self.action_validate()
        if spec is not None:
            self.spawn(self._preview, spec, group="preview", exclusive=True)

    async def _preview(self, spec: dict[str, Any]) -> None:
        raw_seed = self.query_one("#seed", Input).value.strip()
        seed = int(raw_seed) if raw_seed.lstrip("-").isdigit() else 1
        rows = await tt.preview(self.template_name, spec, seed=seed)
        lines = [
            f"{r['t']:>7.3f}s {r['device']} [{r['status']}]\n  "
            + (json.dumps(r["payload"]) if "payload" in r else f"raw {r.get('raw')!r}")
            for r in rows
        ]
        self.query_one("#preview", TextArea).text = "\n".join(lines) or "(nothing sent)"
        self.status(f"preview: first {len(rows)} messages, seed {seed}; nothing was sent")

    def action_save(self) -> None:
        spec = self.action_validate()
        if spec is None:
            return
        raw = tt.parse_text(self.template_name, self.text)
        self.spawn(self._save, raw, group="save", exclusive=True)

    async def _save(self, raw: Any) -> None:
        answer = await self.call("PUT", f"/api/v1/templates/{self.template_name}", raw)
        if isinstance(answer, Failed):
            if answer.error.status == 400:
                self.show_field_error(
                    tt.from_detail(self.template_name, self.text, answer.error.detail)
                )
            return
        self.status(f"saved {self.template_name} (version {answer.get('version')})")
