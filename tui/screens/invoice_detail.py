"""One invoice exactly as it will be charged: lines, coupons, credit, tax, total, mode."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from tui import money
from tui.format import percent
from tui.screens.base import DetailScreen, Failed
from tui.screens.invoice_actions import InvoiceActions
from tui.timefmt import OrgTime


def describe(doc: dict[str, Any], time: OrgTime) -> list[str]:
    """The invoice as lines of text (markup), top to bottom as on paper; times in ``time``."""
    cur = str(doc.get("currency", ""))
    inv = doc.get("invoice") or {}

    def m(v: Any) -> str:
        return money.fmt(v, cur)

    out = [
        f"[b]{doc.get('number')}[/]  org [b]{doc.get('org')}[/]  period {doc.get('period')}"
        + ("  (early close)" if doc.get("early") else ""),
        f"status [b]{doc.get('status')}[/]  mode [b]{doc.get('mode')}[/]  currency {cur}"
        f"  covered {time.at(doc.get('covered_from'))} → {time.at(doc.get('covered_to'))}",
        "",
        "[b]Lines[/]",
    ]
    for line in inv.get("lines") or []:
        if line.get("kind") == "on_demand":
            mins = int(line.get("quantity_minutes", 0))
            span = f"{mins // 60}h{mins % 60:02d}m"
            what = f"On-Demand {line['item']}  {span} @ {m(line.get('hourly'))}/h"
        else:
            what = f"Flat {line.get('item')} from {time.at(line.get('start'))}"
        out.append(f"  {what:<56} {m(line.get('amount')):>16}")
    if not inv.get("lines"):
        out.append("  (no usage)")
    out.append(f"  {'subtotal':<56} {m(inv.get('subtotal')):>16}")
    for d in inv.get("discounts") or []:
        label = f"coupon {d['code']}" + (f" ({d['applies_to']})" if d.get("applies_to") else "")
        out.append(f"  {label:<56} {m(-d['amount']):>16}")
    for n in inv.get("not_applied") or []:
        out.append(
            f"  [dim]coupon {n['code']} not applied: {n.get('detail') or n.get('reason')}[/]"
        )
    if inv.get("credit_applied"):
        out.append(f"  {'credit':<56} {m(-inv['credit_applied']):>16}")
    for a in doc.get("adjustments") or []:
        out.append(f"  [dim]adjustment {m(a.get('amount'))}: {a.get('reason')}[/]")
    out.append(f"  {'net':<56} {m(inv.get('net')):>16}")
    rate = inv.get("tax_rate")
    out.append(
        f"  {'tax ' + (percent(rate) if rate is not None else ''):<56} {m(inv.get('tax')):>16}"
    )
    if inv.get("previous_balance"):
        out.append(f"  {'previous balance':<56} {m(inv['previous_balance']):>16}")
    out.append(f"  [b]{'TOTAL':<56} {m(doc.get('total')):>16}[/]")
    if inv.get("carried_forward"):
        out.append(f"  carried forward (below the minimum charge): {m(inv['carried_forward'])}")
    out.append("")
    out.append(
        f"attempts {doc.get('attempts')}  next retry {time.at(doc.get('next_retry_at'))}"
        f"  payment {doc.get('payment_intent') or '-'}"
    )
    if doc.get("refunded"):
        out.append(f"refunded {m(doc.get('refunded'))}")
    if doc.get("last_error"):
        out.append(f"[red]last payment error: {doc['last_error']}[/]")
    if doc.get("action_url"):
        out.append(f"customer action needed: {doc['action_url']}")
    if doc.get("approved_by"):
        out.append(f"approved by {doc['approved_by']} at {time.at(doc.get('approved_at'))}")
    if doc.get("paid_at"):
        out.append(f"paid at {time.at(doc.get('paid_at'))}")
    return out


class InvoiceDetail(InvoiceActions, DetailScreen):
    NEEDS = dict(InvoiceActions.ACTION_ROLES)
    BINDINGS = list(InvoiceActions.ACTION_BINDINGS)

    def __init__(self, invoice_id: int) -> None:
        super().__init__("billing")
        self.invoice_id = invoice_id
        self.doc: dict[str, Any] = {}

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(classes="detail", id="invoice-scroll"):
            yield Static("loading…", id="invoice")

    async def load(self) -> None:
        doc = await self.call("GET", f"/api/v1/invoices/{self.invoice_id}")
        if not isinstance(doc, Failed):
            account = await self.call("GET", "/api/v1/billing", org_id=doc.get("org_id"))
            if not isinstance(account, Failed):
                self.card = account.get("card")
            self.show_invoice(doc)
            self.fresh()

    def show_invoice(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        lines = describe(doc, self.mm.time)
        lines.append(f"card {self.card or 'none registered'}")
        self.query_one("#invoice", Static).update("\n".join(lines))

    def selected_invoice(self) -> dict[str, Any] | None:
        return self.doc or None

    def invoice_changed(self, doc: dict[str, Any]) -> None:
        self.show_invoice(doc)
