"""One group, k9s-style: its figures and placement, then its devices (status, connection,
last payload); `l` tails its messages; start, stop and scale from here too."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from appliance.contract.groups import GROUPS_PATH, Group
from appliance.contract.inspect import DeviceRow, GroupDevices
from tui import format as f
from tui.live_model import LiveModel, merge_live
from tui.screens.base import DetailScreen, Failed
from tui.screens.group_actions import GroupActions
from tui.widgets.table import Col, ResourceTable

PAGE = 100
DEVICE_COLUMNS = (
    Col("#", num=True),
    Col("device", min=10),
    Col("status", min=6),
    Col("link", min=4),
    Col("last sent", min=12, drop=1),
    Col("last payload", min=10),
)


def device_row(d: DeviceRow, clock: Any) -> tuple[str | Text, ...]:
    link = Text("up", style="green") if d.connected else Text("down", style="red")
    status = Text(d.status, style="" if d.sending else "yellow")
    if not d.sending:
        status.append(" (quiet)", style="dim")
    return (
        str(d.index),
        d.device_id,
        status,
        link,
        clock(d.last_at),
        d.last_payload if d.last_payload is not None else "-",
    )


class GroupDetail(GroupActions, DetailScreen):
    POLL_S = 3.0
    NEEDS = dict(GroupActions.ACTION_ROLES)
    BINDINGS = [
        Binding("l", "tail", "Logs"),
        *GroupActions.ACTION_BINDINGS,
        Binding("enter", "payload", "Payload"),
        Binding("right_square_bracket", "page(1)", "Next devices", key_display="]"),
        Binding("left_square_bracket", "page(-1)", "Previous devices", key_display="["),
    ]

    def __init__(self, name: str) -> None:
        super().__init__("groups")
        self.name_ = name
        self.doc: Group | None = None
        self.rate = 0.0
        self.devices: GroupDevices | None = None
        self.start = 0

    def compose_body(self) -> ComposeResult:
        yield Static(f"[b]Group {self.name_}[/]", id="figures", classes="figures")
        yield Static("", id="placement", classes="summary")
        yield ResourceTable(*DEVICE_COLUMNS, id="devices")
        yield Static("", id="errors", classes="notes")

    async def load(self) -> None:
        doc = await self.call_as(Group, "GET", f"{GROUPS_PATH}/{self.name_}")
        if isinstance(doc, Failed):
            return
        self.show_group(doc)
        devices = await self.call_as(
            GroupDevices,
            "GET",
            f"/api/v1/groups/{self.name_}/devices",
            start=self.start,
            limit=PAGE,
        )
        if not isinstance(devices, Failed):
            self.show_devices(devices)
        self.fresh()

    def on_live(self, model: LiveModel) -> None:
        if self.doc is not None:
            self.show_group(self.doc, self.rate)

    def show_group(self, doc: Group, rate: float = 0.0) -> None:
        """The group's REST document, with the live feed's newer figures on top."""
        self.doc, self.rate = doc, rate
        doc, rate = merge_live(doc, self.mm.model, rate)
        lat = doc.lateness_ms
        colour = {"running": "green", "stopped": "dim"}.get(doc.state, "red")
        self.query_one("#figures", Static).update(
            f"[b]{self.name_}[/] [{colour}]{doc.state}[/] run {doc.run_id}  "
            f"mocks [b]{f.count(doc.running)}/{f.count(doc.count)}[/]  "
            f"sent/s [b]{f.rate(rate)}[/]  sent {f.count(doc.sent)}"
            f"  errors {f.count(doc.errors)}\n"
            f"template {doc.template}  {doc.entitlement}  seed "
            f"{doc.seed if doc.seed is not None else '-'}  lateness ms p50 "
            f"{f.ms(lat.p50)} p99 {f.ms(lat.p99)} max {f.ms(lat.max)}"
        )
        self.query_one("#placement", Static).update(
            "placed on "
            + (
                "  ".join(
                    f"{p.agent_id} {p.index_start}-{p.index_end - 1}"
                    + ("" if p.agent_online else " [red](offline)[/]")
                    for p in doc.placement
                )
                or "no agent (not running)"
            )
        )

    def show_devices(self, page: GroupDevices) -> None:
        self.devices = page
        clock = self.mm.time.clock
        self.query_one("#devices", ResourceTable).show(
            {str(d.index): device_row(d, clock) for d in page.devices}
        )
        notes = [f"[red]{e}[/]" for e in page.last_errors[-3:]]
        if page.unanswered:
            notes.append(f"[yellow]no answer from {', '.join(page.unanswered)}[/]")
        if page.state != "running":
            notes.append("not running: no devices to show (s starts it)")
        elif page.devices:
            last = page.start + len(page.devices) - 1
            notes.append(
                f"devices {page.start}-{last} of {f.count(page.count)}"
                + ("  ] next" if last + 1 < page.count else "")
                + ("  [ previous" if page.start else "")
                + f"  last sent in {self.mm.time.abbreviation()}"
            )
        self.query_one("#errors", Static).update("\n".join(notes))

    # --- GroupActions -------------------------------------------------------------------

    def selected_group(self) -> str | None:
        return self.name_

    def group_doc(self, name: str) -> Group | None:
        return self.doc

    def group_changed(self, doc: Group) -> None:
        self.show_group(doc)
        self.reload()

    # --- keys ---------------------------------------------------------------------------

    def action_page(self, step: int) -> None:
        count = self.doc.count if self.doc is not None else 0
        start = max(0, self.start + step * PAGE)
        if start != self.start and start < max(count, 1):
            self.start = start
            self.reload()

    def action_payload(self) -> None:
        key = self.query_one("#devices", ResourceTable).selected_key
        if key is None or self.devices is None:
            return
        device = next((d for d in self.devices.devices if str(d.index) == key), None)
        if device is not None:
            self.app.push_screen(
                PayloadModal(device, self.mm.time.at(device.last_at, seconds=True))
            )

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_payload()


class PayloadModal(ModalScreen[None]):
    """One device's last payload in full (pretty when it is JSON)."""

    BINDINGS = [Binding("escape", "dismiss", "Close"), Binding("enter", "dismiss", "Close")]

    def __init__(self, device: DeviceRow, when: str) -> None:
        super().__init__(classes="modal")
        self.device = device
        self.when = when

    def compose(self) -> ComposeResult:
        d = self.device
        text = d.last_payload or "(nothing sent since the group is watched)"
        with contextlib.suppress(ValueError):  # not JSON (a malformed_json fault): as sent
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        with VerticalScroll(classes="dialog help"):
            yield Static(f"{d.device_id} (#{d.index}) on {d.agent_id}", classes="dialog-title")
            link = "up" if d.connected else "down"
            yield Static(f"status {d.status}  link {link}  at {self.when}")
            yield Static(text, markup=False)
