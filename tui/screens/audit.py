"""Audit: the hash-chained log, newest first, filterable, with the chain's status."""

from __future__ import annotations

import json
from collections.abc import Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from appliance.contract.audit import AuditLogEntry, AuditPage, AuditVerdict
from tui.audit_chain import check
from tui.screens.base import AppScreen, DetailScreen, Failed
from tui.widgets.form import Field, FormModal
from tui.widgets.table import Col, ResourceTable

COLUMNS = (
    Col("id", num=True),
    Col("at", min=24),
    Col("actor", min=8),
    Col("action", min=10),
    Col("target", min=8),
)


def entry_row(e: AuditLogEntry, at: Callable[..., str]) -> tuple[str, ...]:
    return (str(e.id), at(e.at, seconds=True), e.actor, e.action, e.target)


class AuditScreen(AppScreen):
    MODE = "audit"
    POLL_S = 10.0
    BINDINGS = [
        Binding("enter", "open", "Open"),
        Binding("f", "query", "Query"),
        Binding("m", "more", "Older"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._entries: list[AuditLogEntry] = []
        self._query: dict[str, str] = {}
        self._next: int | None = None
        self._verdict = ""

    def compose_body(self) -> ComposeResult:
        yield Static("", id="chain", classes="summary")
        yield ResourceTable(*COLUMNS, id="audit")

    async def load(self) -> None:
        page = await self.call_as(AuditPage, "GET", "/api/v1/audit", limit=200, **self._query)
        if isinstance(page, Failed):
            if page.error.status == 403:
                self.status("the audit log needs the admin role", error=True)
            return
        self._next = page.next_before_id
        self.show_entries(page.entries)
        self.fresh()
        verdict = await self.call_as(AuditVerdict, "GET", "/api/v1/audit/verify")
        if not isinstance(verdict, Failed):
            self._verdict = (
                f"whole chain ok ({verdict.rows} rows)"
                if verdict.ok
                else f"[b red]chain broken at row {verdict.broken_id}: {verdict.reason}[/]"
            )
            self.show_entries(self._entries)

    def show_entries(self, entries: list[AuditLogEntry]) -> None:
        self._entries = sorted(entries, key=lambda e: -e.id)
        self.query_one("#audit", ResourceTable).show(
            {str(e.id): entry_row(e, self.mm.time.at) for e in self._entries}
        )
        query = " ".join(f"{k}={v}" for k, v in self._query.items()) or "all"
        self.query_one("#chain", Static).update(
            f"{self._verdict or check(self._entries).line()}   query: {query}   "
            f"rows {len(self._entries)}" + ("   m: older" if self._next else "")
        )

    def action_more(self) -> None:
        if self._next is not None:
            self.spawn(self._more, self._next, group="load", exclusive=True)

    async def _more(self, before: int) -> None:
        page = await self.call_as(
            AuditPage, "GET", "/api/v1/audit", limit=200, before_id=before, **self._query
        )
        if not isinstance(page, Failed):
            self._next = page.next_before_id
            self.show_entries(self._entries + page.entries)

    def action_query(self) -> None:
        self.spawn(self._ask, group="action")

    async def _ask(self) -> None:
        values = await self.app.push_screen_wait(
            FormModal(
                "Query the audit log (prefixes; empty = any)",
                [
                    Field(
                        "action",
                        "Action prefix",
                        self._query.get("action", ""),
                        placeholder="invoice.",
                    ),
                    Field("actor", "Actor (exact)", self._query.get("actor", "")),
                    Field("target", "Target prefix", self._query.get("target", "")),
                ],
                submit_label="Query",
            )
        )
        if values is not None:
            self._query = {k: v for k, v in values.items() if v}
            self.reload()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        key = self.query_one("#audit", ResourceTable).selected_key
        entry = next((e for e in self._entries if str(e.id) == key), None)
        if entry is not None:
            self.app.push_screen(AuditEntryScreen(entry))


class AuditEntryScreen(DetailScreen):
    def __init__(self, entry: AuditLogEntry) -> None:
        super().__init__("audit")
        self.entry = entry

    def compose_body(self) -> ComposeResult:
        e = self.entry
        with VerticalScroll(classes="detail"):
            when = self.mm.time.at(e.at, seconds=True)
            yield Static(f"[b]#{e.id} {e.action}[/]  {when}", classes="dialog-title")
            yield Static(f"actor {e.actor}   target {e.target}   org {e.org_id or '-'}")
            yield Static(f"hash {e.hash}")
            yield Static("[b]before[/]")
            yield Static(json.dumps(e.before, indent=2, ensure_ascii=False), markup=False)
            yield Static("[b]after[/]")
            yield Static(json.dumps(e.after, indent=2, ensure_ascii=False), markup=False)
