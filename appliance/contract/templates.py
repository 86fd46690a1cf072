"""Template drafts checked and previewed by the appliance (nothing is stored or sent)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

MAX_TEXT = 256 * 1024
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]


class TemplateDraft(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A template as an editor holds it: YAML (or JSON, which is YAML) text."""

    name: Name
    text: Text


class PreviewDraft(TemplateDraft, kw_only=True, forbid_unknown_fields=True):
    seed: Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)] = 1
    devices: Annotated[int, msgspec.Meta(ge=1, le=20)] = 3
    count: Annotated[int, msgspec.Meta(ge=1, le=50)] = 3
    """Messages per device."""


class FieldProblem(msgspec.Struct, kw_only=True):
    """The first wrong thing in a draft, as one plain sentence."""

    path: str = ""
    """Dotted, as the appliance names fields: ``templates.thermo.payload.temp``; empty for
    text that is not YAML at all."""
    message: str
    line: int | None = None
    """1-based line of the wrong field (or of the YAML mistake) in the draft's text."""
    column: int | None = None

    def sentence(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}{self.path}: {self.message}" if self.path else f"{where}{self.message}"


class TemplateCheck(msgspec.Struct, kw_only=True):
    valid: bool
    spec: dict[str, Any] | None = None
    """The template as the appliance would store it (normalised), when valid."""
    error: FieldProblem | None = None


class PreviewMessage(msgspec.Struct, kw_only=True, omit_defaults=True):
    t: float
    """Seconds from the start of the run (a virtual clock: nothing waited)."""
    device: str
    topic: str
    status: str
    payload: Any = None
    raw: str | None = None
    """The bytes as text when they are not JSON (a malformed_json fault)."""


class PreviewResult(msgspec.Struct, kw_only=True):
    valid: bool
    seed: int
    messages: list[PreviewMessage] = []
    error: FieldProblem | None = None
