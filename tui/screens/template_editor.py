"""One template as YAML: the appliance checks it (the wrong field's line is selected),
previews it seeded (nothing is sent), and saves it."""

from __future__ import annotations

import json
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, Static, TextArea

from appliance.contract.groups import TEMPLATES_PATH, Template
from appliance.contract.templates import FieldProblem, PreviewResult, TemplateCheck
from tui import template_tools as tt
from tui.screens.base import DetailScreen, Failed


class TemplateEditor(DetailScreen):
    NEEDS = {"save": "operator", "validate": "operator", "preview": "operator"}
    # ctrl+p stays the command palette's; Tab leaves the editor (indent with spaces).
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("ctrl+t", "validate", "Check", priority=True),
        Binding("ctrl+r", "preview", "Preview", priority=True),
        Binding("escape", "back", "Back", priority=True),
    ]

    def __init__(self, name: str, spec: dict[str, Any] | None) -> None:
        super().__init__("templates")
        self.template_name = name
        self._text = tt.to_text(spec) if spec else tt.SKELETON
        self.problem: FieldProblem | None = None
        self.preview_rows: list[str] = []

    def compose_body(self) -> ComposeResult:
        yield Static(
            f"[b]Template {self.template_name}[/]  ctrl+t check · ctrl+r preview · ctrl+s save"
            " · tab leaves the editor · esc back",
            classes="summary",
        )
        with Horizontal(id="editor-row"):
            yield TextArea(self._text, id="editor", show_line_numbers=True, tab_behavior="focus")
            with Vertical(id="preview-pane"):
                with Horizontal(id="seed-row"):
                    yield Label("seed ")
                    yield Input("1", id="seed", type="integer")
                yield TextArea("", id="preview", read_only=True, show_line_numbers=False)
        yield Static("", id="field-error", classes="error-line")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#editor", TextArea).focus()

    @property
    def text(self) -> str:
        return self.query_one("#editor", TextArea).text

    def show_problem(self, problem: FieldProblem | None) -> None:
        self.problem = problem
        box = self.query_one("#field-error", Static)
        editor = self.query_one("#editor", TextArea)
        if problem is None:
            box.update("[green]valid[/]")
            return
        box.update(f"[red]{problem.sentence()}[/]", layout=True)
        if problem.line is not None and 0 < problem.line <= editor.document.line_count:
            row = problem.line - 1
            editor.selection = editor.selection.__class__(
                (row, 0), (row, len(editor.document.get_line(row)))
            )
            editor.scroll_cursor_visible(center=True)
            editor.focus()

    async def check(self) -> TemplateCheck | None:
        """The appliance's verdict on the draft; shows the problem, None if it could not ask."""
        answer = await self.call_as(
            TemplateCheck,
            "POST",
            "/api/v1/templates/validate",
            {"name": self.template_name, "text": self.text},
        )
        if isinstance(answer, Failed):
            return None
        self.show_problem(answer.error)
        return answer

    def action_validate(self) -> None:
        self.spawn(self.check, group="check", exclusive=True)

    def action_preview(self) -> None:
        self.spawn(self._preview, group="preview", exclusive=True)

    async def _preview(self) -> None:
        raw_seed = self.query_one("#seed", Input).value.strip()
        seed = int(raw_seed) if raw_seed.lstrip("-").isdigit() else 1
        answer = await self.call_as(
            PreviewResult,
            "POST",
            "/api/v1/templates/preview",
            {"name": self.template_name, "text": self.text, "seed": seed},
        )
        if isinstance(answer, Failed):
            return
        self.show_problem(answer.error)
        if not answer.valid:
            return
        self.preview_rows = [
            f"{m.t:>7.3f}s {m.device} [{m.status}]\n  "
            + (json.dumps(m.payload) if m.raw is None else f"raw {m.raw!r}")
            for m in answer.messages
        ]
        self.query_one("#preview", TextArea).text = "\n".join(self.preview_rows) or "(nothing sent)"
        self.status(
            f"preview: first {len(answer.messages)} messages, seed {seed}; nothing was sent"
        )

    def action_save(self) -> None:
        self.spawn(self._save, group="save", exclusive=True)

    async def _save(self) -> None:
        checked = await self.check()
        if checked is None or not checked.valid or checked.spec is None:
            return
        answer = await self.call_as(
            Template, "PUT", f"{TEMPLATES_PATH}/{self.template_name}", checked.spec
        )
        if isinstance(answer, Failed):
            if answer.error.status == 400:
                self.show_problem(FieldProblem(message=answer.error.detail))
            return
        self.status(f"saved {self.template_name} (version {answer.version})")
