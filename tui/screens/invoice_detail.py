"""One invoice exactly as it will be charged: lines, coupons, credit, tax, total, mode."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from appliance.contract.billing import Account, InvoiceDoc, OnDemandLine
from tui import money
from tui.format import percent
from tui.screens.base import DetailScreen, Failed
from tui.screens.invoice_actions import InvoiceActions
from tui.timefmt import OrgTime


def describe(doc: InvoiceDoc, time: OrgTime) -> list[str]:
    """The invoice as lines of text (markup), top to bottom as on paper; times in ``time``."""
    cur = doc.currency
    inv = doc.invoice

    def m(v: int | None) -> str:
        return money.fmt(v, cur)

    out = [
        f"[b]{doc.number}[/]  org [b]{doc.org}[/]  period {doc.period}"
        + ("  (early close)" if doc.early else ""),
        f"status [b]{doc.status}[/]  mode [b]{doc.mode}[/]  currency {cur}"
        f"  covered {time.at(doc.covered_from)} → {time.at(doc.covered_to)}",
        "",
        "[b]Lines[/]",
    ]
    for line in inv.lines:
        if isinstance(line, OnDemandLine):
            mins = line.quantity_minutes
            span = f"{mins // 60}h{mins % 60:02d}m"
            what = f"On-Demand {line.item}  {span} @ {m(line.hourly)}/h"
        else:
            what = f"Flat {line.item} from {time.at(line.start)}"
        out.append(f"  {what:<56} {m(line.amount):>16}")
    if not inv.lines:
        out.append("  (no usage)")
    out.append(f"  {'subtotal':<56} {m(inv.subtotal):>16}")
    for d in inv.discounts:
        label = f"coupon {d.code}" + (f" ({d.applies_to})" if d.applies_to else "")
        out.append(f"  {label:<56} {m(-d.amount):>16}")
    for n in inv.not_applied:
        out.append(f"  [dim]coupon {n.code} not applied: {n.detail or n.reason}[/]")
    if inv.credit_applied:
        out.append(f"  {'credit':<56} {m(-inv.credit_applied):>16}")
    for a in doc.adjustments:
        out.append(f"  [dim]adjustment {m(a.amount)}: {a.reason}[/]")
    out.append(f"  {'net':<56} {m(inv.net):>16}")
    out.append(f"  {'tax ' + percent(inv.tax_rate):<56} {m(inv.tax):>16}")
    if inv.previous_balance:
        out.append(f"  {'previous balance':<56} {m(inv.previous_balance):>16}")
    out.append(f"  [b]{'TOTAL':<56} {m(doc.total):>16}[/]")
    if inv.carried_forward:
        out.append(f"  carried forward (below the minimum charge): {m(inv.carried_forward)}")
    out.append("")
    out.append(
        f"attempts {doc.attempts}  next retry {time.at(doc.next_retry_at)}"
        f"  payment {doc.payment_intent or '-'}"
    )
    if doc.refunded:
        out.append(f"refunded {m(doc.refunded)}")
    if doc.last_error:
        out.append(f"[red]last payment error: {doc.last_error}[/]")
    if doc.action_url:
        out.append(f"customer action needed: {doc.action_url}")
    if doc.approved_by:
        out.append(f"approved by {doc.approved_by} at {time.at(doc.approved_at)}")
    if doc.paid_at:
        out.append(f"paid at {time.at(doc.paid_at)}")
    return out


class InvoiceDetail(InvoiceActions, DetailScreen):
    NEEDS = dict(InvoiceActions.ACTION_ROLES)
    BINDINGS = list(InvoiceActions.ACTION_BINDINGS)

    def __init__(self, invoice_id: int) -> None:
        super().__init__("billing")
        self.invoice_id = invoice_id
        self.doc: InvoiceDoc | None = None

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(classes="detail", id="invoice-scroll"):
            yield Static("loading…", id="invoice")

    async def load(self) -> None:
        doc = await self.call_as(InvoiceDoc, "GET", f"/api/v1/invoices/{self.invoice_id}")
        if not isinstance(doc, Failed):
            account = await self.call_as(Account, "GET", "/api/v1/billing", org_id=doc.org_id)
            if not isinstance(account, Failed):
                self.card = account.card
            self.show_invoice(doc)
            self.fresh()

    def show_invoice(self, doc: InvoiceDoc) -> None:
        self.doc = doc
        lines = describe(doc, self.mm.time)
        lines.append(f"card {self.card or 'none registered'}")
        self.query_one("#invoice", Static).update("\n".join(lines))

    def selected_invoice(self) -> InvoiceDoc | None:
        return self.doc

    def invoice_changed(self, doc: InvoiceDoc) -> None:
        self.show_invoice(doc)
