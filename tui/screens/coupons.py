"""Coupons on the appliance and the ones this org redeemed; redeem one, grant credit."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from appliance.contract.billing import Account, Coupon
from tui import money
from tui.format import percent
from tui.screens.base import DetailScreen, Failed
from tui.widgets.confirm import ConfirmModal
from tui.widgets.form import Field, FormModal
from tui.widgets.table import Col, ResourceTable

COLUMNS = (
    Col("code", min=8),
    Col("off", min=6),
    Col("applies to", min=6),
    Col("duration", min=6, drop=1),
    Col("redeemed here", min=10),
)


def off_text(c: Coupon, currency: str) -> str:
    if c.percent_off is not None:
        return percent(c.percent_off)
    return money.fmt(c.amount_off, c.currency or currency)


class CouponsScreen(DetailScreen):
    NEEDS = {"redeem": "admin", "credit": "admin"}
    BINDINGS = [Binding("d", "redeem", "Redeem"), Binding("g", "credit", "Grant credit")]

    def __init__(self, account: Account | None) -> None:
        super().__init__("billing")
        self.account = account
        self._coupons: dict[str, Coupon] = {}

    def compose_body(self) -> ComposeResult:
        yield Static("", id="credit", classes="summary")
        yield ResourceTable(*COLUMNS, id="coupons")

    async def load(self) -> None:
        coupons = await self.call_as(list[Coupon], "GET", "/api/v1/billing/coupons")
        account = await self.call_as(Account, "GET", "/api/v1/billing")
        if not isinstance(account, Failed):
            self.account = account
        if not isinstance(coupons, Failed):
            self.show_coupons(coupons)
            self.fresh()

    def show_coupons(self, coupons: list[Coupon]) -> None:
        acc = self.account
        cur = acc.currency if acc else ""
        redeemed = {c.code: c for c in acc.coupons} if acc else {}
        rows = {}
        for c in coupons:
            off = off_text(c, cur)
            mine = redeemed.get(c.code)
            rows[c.code] = (
                c.code,
                off,
                c.applies_to,
                c.duration + (f" {c.months}m" if c.months else ""),
                f"{self.mm.time.at(mine.redeemed_at)} (used {mine.uses}x)" if mine else "",
            )
        self._coupons = {c.code: c for c in coupons}
        self.query_one("#coupons", ResourceTable).show(rows)
        self.query_one("#credit", Static).update(
            f"[b]{acc.org if acc else '?'}[/]  credit balance "
            f"{money.fmt(acc.credit_balance if acc else None, cur)}   carried "
            f"{money.fmt(acc.carried_balance if acc else None, cur)}"
        )

    def action_redeem(self) -> None:
        code = self.query_one("#coupons", ResourceTable).selected_key
        if code is not None:
            self.spawn(self._redeem, code, group="action")

    async def _redeem(self, code: str) -> None:
        c = self._coupons.get(code)
        if c is None:
            return
        acc = self.account
        cur = acc.currency if acc else ""
        duration = c.duration + (f" {c.months} months" if c.months else "")
        if not await self.app.push_screen_wait(
            ConfirmModal(
                f"Redeem {code} for {acc.org if acc else 'this org'}?",
                [
                    f"Org:      {acc.org if acc else '?'}",
                    f"Coupon:   {code}: {off_text(c, cur)} off {c.applies_to}",
                    f"Duration: {duration}",
                    "It applies to this org's invoices from the next close on.",
                ],
                confirm_label="Redeem",
            )
        ):
            return
        if not isinstance(
            await self.call("POST", f"/api/v1/billing/coupons/{code}/redeem"), Failed
        ):
            self.status(f"redeemed {code}")
            self.reload()

    def action_credit(self) -> None:
        self.spawn(self._credit, group="action")

    async def _credit(self) -> None:
        acc = self.account
        if acc is None:
            self.status("the billing account did not load: cannot grant credit", error=True)
            return
        cur = acc.currency
        values = await self.app.push_screen_wait(
            FormModal(
                "Grant credit", [Field("amount", f"Amount in {cur}"), Field("reason", "Reason")]
            )
        )
        if not values or not values["amount"] or not values["reason"]:
            return
        try:
            amount = money.parse(values["amount"], cur)
        except ValueError as e:
            self.status(str(e), error=True)
            return
        balance = acc.credit_balance
        if not await self.app.push_screen_wait(
            ConfirmModal(
                f"Grant {money.fmt(amount, cur)} of credit to {acc.org}?",
                [
                    f"Org:      {acc.org}",
                    f"Amount:   {money.fmt(amount, cur)}",
                    f"Reason:   {values['reason']}",
                    f"Balance:  {money.fmt(balance, cur)} now, "
                    f"{money.fmt(balance + amount, cur)} after",
                    "Credit comes off the next invoices before tax.",
                ],
                confirm_label="Grant",
            )
        ):
            return
        body = {"amount": amount, "reason": values["reason"], "org_id": acc.org_id}
        if not isinstance(await self.call("POST", "/api/v1/billing/credits", body), Failed):
            self.status(f"granted {money.fmt(amount, cur)}")
            self.reload()
