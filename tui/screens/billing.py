"""Billing (admin): invoices newest first, the org's card, credit and coupons."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from appliance.contract.billing import Account, CardLink, InvoiceDoc, InvoiceSummary, Quote
from tui import money
from tui.screens.base import AppScreen, Failed
from tui.screens.invoice_actions import InvoiceActions
from tui.widgets.table import Col, ResourceTable

COLUMNS = (
    Col("id", num=True),
    Col("number", min=16),
    Col("org", min=6, drop=3),
    Col("period", min=7),
    Col("status", min=15),
    Col("total", num=True),
    Col("mode", min=4, drop=4),
    Col("attempts", num=True, drop=2),
    Col("last error", min=10, drop=1),
)
STATUS_STYLE = {
    "draft": "yellow",
    "approved": "cyan",
    "paid": "green",
    "failed": "red",
    "requires_action": "red",
    "void": "dim",
    "refunded": "magenta",
}


def invoice_row(i: InvoiceSummary) -> tuple[str | Text, ...]:
    return (
        str(i.id),
        i.number,
        i.org,
        i.period + (" early" if i.early else ""),
        Text(i.status, style=STATUS_STYLE.get(i.status, "")),
        money.fmt(i.total, i.currency),
        i.mode,
        str(i.attempts),
        Text(i.last_error or "", style="red"),
    )


class BillingScreen(InvoiceActions, AppScreen):
    MODE = "billing"
    POLL_S = 10.0
    NEEDS = {
        **InvoiceActions.ACTION_ROLES,
        "charge_now": "admin",
        "card_link": "admin",
        "coupons": "admin",
    }
    BINDINGS = [
        Binding("enter", "open", "Open"),
        *InvoiceActions.ACTION_BINDINGS,
        Binding("N", "charge_now", "Charge now"),
        Binding("l", "card_link", "Card link"),
        Binding("o", "coupons", "Coupons"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._invoices: dict[str, InvoiceSummary] = {}
        self.account: Account | None = None

    def compose_body(self) -> ComposeResult:
        yield Static("", id="account", classes="summary")
        yield ResourceTable(*COLUMNS, id="invoices")

    async def load(self) -> None:
        all_orgs = self.mm.superuser
        invoices = await self.call_as(
            list[InvoiceSummary], "GET", "/api/v1/invoices", all_orgs=all_orgs or None
        )
        if isinstance(invoices, Failed):
            if invoices.error.status == 403:
                self.status("billing needs the admin role", error=True)
            return
        account = await self.call_as(Account, "GET", "/api/v1/billing")
        self.show_billing(invoices, None if isinstance(account, Failed) else account)
        self.fresh()

    def show_billing(self, invoices: list[InvoiceSummary], account: Account | None) -> None:
        self._invoices = {str(i.id): i for i in invoices}
        self.account = account
        self.card = card = account.card if account else None
        self.query_one("#invoices", ResourceTable).show(
            {str(i.id): invoice_row(i) for i in invoices}
        )
        cur = account.currency if account else ""
        drafts = sum(1 for i in invoices if i.status == "draft")
        failed = sum(1 for i in invoices if i.status in ("failed", "requires_action"))
        coupons = ", ".join(c.code for c in account.coupons) if account else ""
        self.query_one("#account", Static).update(
            f"[b]{account.org if account else '?'}[/] {account.mode if account else '?'} mode"
            "   card "
            + (f"[green]{card}[/]" if card else "[red]none (l: card link)[/]")
            + f"   credit {money.fmt(account.credit_balance if account else None, cur)}"
            f"   carried {money.fmt(account.carried_balance if account else None, cur)}\n"
            f"drafts [b]{drafts}[/]   failed [b]{failed}[/]   coupons {coupons or 'none'}"
        )

    def selected_invoice(self) -> InvoiceSummary | None:
        key = self.query_one("#invoices", ResourceTable).selected_key
        if key is None:
            self.status("no invoice selected", error=True)
            return None
        return self._invoices.get(key)

    def invoice_changed(self, doc: InvoiceDoc) -> None:
        self._invoices[str(doc.id)] = doc
        self.show_billing(list(self._invoices.values()), self.account)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        key = self.query_one("#invoices", ResourceTable).selected_key
        if key is not None and key in self._invoices:
            from tui.screens.invoice_detail import InvoiceDetail

            self.app.push_screen(InvoiceDetail(int(key)))

    # --- account actions ---------------------------------------------------------------

    def action_card_link(self) -> None:
        self.spawn(self._card_link, group="action")

    async def _card_link(self) -> None:
        answer = await self.call_as(CardLink, "POST", "/api/v1/billing/card-link")
        if isinstance(answer, Failed):
            return
        url = answer.url
        self.app.copy_to_clipboard(url)
        self.notify(f"card registration link (copied): {url}", timeout=30)
        self.status(f"card link: {url}")

    def action_charge_now(self) -> None:
        self.spawn(self._charge_now, group="action")

    async def _charge_now(self) -> None:
        """Close the month so far and charge it: the confirmation states what and to which
        card, from the appliance's own quote of the month to date."""
        from tui.widgets.confirm import ConfirmModal

        quote = await self.call_as(Quote, "GET", "/api/v1/billing/quote")
        if isinstance(quote, Failed):
            return
        cur = quote.currency
        total = quote.total
        if quote.status != "chargeable":
            why = {
                "nothing_due": "nothing is due so far this month",
                "below_minimum": f"{money.fmt(total, cur)} is below the minimum charge "
                "(it is carried to the month close)",
            }.get(quote.status, quote.status)
            self.status(f"nothing to charge now: {why}", error=True)
            return
        org = self.account.org if self.account else "this org"
        card = self.account.card if self.account else None
        if not card:
            self.status("no card registered: l sends a card registration link", error=True)
            return
        ok = await self.app.push_screen_wait(
            ConfirmModal(
                f"Close and charge {org} now?",
                [
                    f"Org:      {org}   mode {self.account.mode if self.account else '?'}",
                    f"Amount:   {money.fmt(total, cur)} (the month so far, tax included)",
                    f"Card:     {card}",
                    f"Period:   {quote.period} from {self.mm.time.at(quote.covered_from)} to now",
                    "Minutes that pass before the charge are added to it; the month's",
                    "invoice is approved and charged off-session at once.",
                ],
                confirm_label="Charge now",
            )
        )
        if not ok:
            return
        doc = await self.call_as(InvoiceDoc, "POST", "/api/v1/invoices/charge-now")
        if not isinstance(doc, Failed):
            self.status(f"{doc.number}: {doc.status} {money.fmt(doc.total, doc.currency)}")
            self.reload()

    def action_coupons(self) -> None:
        from tui.screens.coupons import CouponsScreen

        self.app.push_screen(CouponsScreen(self.account))
