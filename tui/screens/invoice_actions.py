"""Approve, void, adjust, charge, refund: each behind a confirmation that repeats the money.

Before any of them the invoice is read again, so the confirmation states what the
appliance has now (status, total, card), not what the table showed a while ago.
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual.binding import Binding

from appliance.contract.billing import Account, InvoiceDoc, InvoiceSummary
from tui import money
from tui.screens.base import AppScreen, Failed
from tui.widgets.confirm import ConfirmModal
from tui.widgets.form import Field, FormModal

VOIDABLE = ("draft", "approved", "failed", "requires_action", "carried")
CHARGEABLE = ("approved", "failed", "requires_action")


class InvoiceActions:
    """Mixed into a screen that has ``selected_invoice()`` and ``invoice_changed(doc)``."""

    ACTION_ROLES: ClassVar[dict[str, str]] = {
        "approve": "admin",
        "void": "admin",
        "adjust": "admin",
        "charge": "admin",
        "refund": "admin",
    }
    ACTION_BINDINGS: ClassVar[list[Binding]] = [
        Binding("a", "approve", "Approve"),
        Binding("c", "charge", "Charge/retry"),
        Binding("v", "void", "Void"),
        Binding("j", "adjust", "Adjust"),
        Binding("R", "refund", "Refund"),
    ]
    card: str | None = None
    """The org's card as the billing account shows it (for the confirmations)."""

    def selected_invoice(self) -> InvoiceSummary | None:
        raise NotImplementedError

    def invoice_changed(self, doc: InvoiceDoc) -> None:
        raise NotImplementedError

    @property
    def _screen(self) -> AppScreen:
        assert isinstance(self, AppScreen)
        return self

    def _start(self, fn: Any, *args: Any) -> None:
        self._screen.spawn(fn, *args, group="invoice-action", exclusive=True)

    async def _fresh(
        self, inv: InvoiceSummary, allowed: tuple[str, ...], verb: str
    ) -> InvoiceDoc | None:
        """The invoice as the appliance has it now, if its status allows ``verb``; else None."""
        doc = await self._screen.call_as(InvoiceDoc, "GET", f"/api/v1/invoices/{inv.id}")
        if isinstance(doc, Failed):
            return None
        # The card of the invoice's org (a superuser's list holds every org's invoices).
        account = await self._screen.call_as(Account, "GET", "/api/v1/billing", org_id=doc.org_id)
        self.card = None if isinstance(account, Failed) else account.card
        self.invoice_changed(doc)
        if doc.status not in allowed:
            self._screen.status(
                f"{doc.number} is {doc.status}: it cannot be {verb} (only {', '.join(allowed)})",
                error=True,
            )
            return None
        return doc

    def _lines(self, inv: InvoiceSummary, amount: int | None = None) -> list[str]:
        cur = inv.currency
        total = money.fmt(inv.total, cur)
        return [
            f"Org:      {inv.org}",
            f"Invoice:  {inv.number}  period {inv.period}  status {inv.status}",
            f"Amount:   {money.fmt(amount, cur) if amount is not None else total}"
            + (f"  (invoice total {total})" if amount is not None else ""),
            f"Card:     {self.card or 'none registered'}",
            f"Currency: {cur or '?'}   mode {inv.mode}",
        ]

    async def _confirm(
        self,
        title: str,
        inv: InvoiceSummary,
        extra: list[str],
        label: str,
        amount: int | None = None,
    ) -> bool:
        modal = ConfirmModal(title, [*self._lines(inv, amount), *extra], confirm_label=label)
        return bool(await self._screen.app.push_screen_wait(modal))

    async def _post(self, inv: InvoiceSummary, verb: str, body: Any, done: str) -> None:
        doc = await self._screen.call_as(
            InvoiceDoc, "POST", f"/api/v1/invoices/{inv.id}/{verb}", body
        )
        if isinstance(doc, Failed):
            return
        self.invoice_changed(doc)
        self._screen.status(
            f"{doc.number}: {done} → {doc.status} {money.fmt(doc.total, doc.currency)}"
            + (f"  [red]{doc.last_error}[/]" if doc.last_error else "")
        )

    # --- the actions --------------------------------------------------------------------

    def action_approve(self) -> None:
        if (inv := self.selected_invoice()) is not None:
            self._start(self._approve, inv)

    async def _approve(self, inv: InvoiceSummary) -> None:
        if (inv := await self._fresh(inv, ("draft",), "approved")) is None:
            return
        if await self._confirm(
            "Approve and charge this invoice?",
            inv,
            ["The card is charged off-session for exactly this amount."],
            "Approve",
        ):
            await self._post(inv, "approve", {"expected_total": inv.total}, "approved")

    def action_void(self) -> None:
        if (inv := self.selected_invoice()) is not None:
            self._start(self._void, inv)

    async def _void(self, inv: InvoiceSummary) -> None:
        if (inv := await self._fresh(inv, VOIDABLE, "voided")) is None:
            return
        values = await self._screen.app.push_screen_wait(
            FormModal(
                f"Void {inv.number}",
                [Field("reason", "Reason (required)")],
                submit_label="Next",
            )
        )
        if not values or not values["reason"]:
            return
        if await self._confirm(
            "Void this invoice?",
            inv,
            [f"Reason:   {values['reason']}", "Nothing is charged; credit and coupons return."],
            "Void",
        ):
            await self._post(inv, "void", {"reason": values["reason"]}, "voided")

    def action_adjust(self) -> None:
        if (inv := self.selected_invoice()) is not None:
            self._start(self._adjust, inv)

    async def _adjust(self, inv: InvoiceSummary) -> None:
        if (inv := await self._fresh(inv, ("draft", "approved"), "adjusted")) is None:
            return
        currency = inv.currency
        values = await self._screen.app.push_screen_wait(
            FormModal(
                f"Adjust {inv.number} (a credit, in {currency})",
                [Field("amount", f"Credit in {currency}"), Field("reason", "Reason (required)")],
                submit_label="Next",
            )
        )
        if not values or not values["amount"] or not values["reason"]:
            return
        try:
            amount = money.parse(values["amount"], currency)
        except ValueError as e:
            self._screen.status(str(e), error=True)
            return
        if await self._confirm(
            "Credit this invoice?",
            inv,
            [f"Credit:   {money.fmt(amount, currency)}", f"Reason:   {values['reason']}"],
            "Adjust",
        ):
            await self._post(
                inv, "adjust", {"amount": amount, "reason": values["reason"]}, "adjusted"
            )

    def action_charge(self) -> None:
        if (inv := self.selected_invoice()) is not None:
            self._start(self._charge, inv)

    async def _charge(self, inv: InvoiceSummary) -> None:
        if (inv := await self._fresh(inv, CHARGEABLE, "charged")) is None:
            return
        if await self._confirm("Charge this invoice now?", inv, [], "Charge"):
            await self._post(inv, "charge", None, "charged")

    def action_refund(self) -> None:
        if (inv := self.selected_invoice()) is not None:
            self._start(self._refund, inv)

    async def _refund(self, inv: InvoiceSummary) -> None:
        if (inv := await self._fresh(inv, ("paid",), "refunded")) is None:
            return
        currency = inv.currency
        left = inv.total - inv.refunded
        values = await self._screen.app.push_screen_wait(
            FormModal(
                f"Refund {inv.number} (up to {money.fmt(left, currency)})",
                [
                    Field("amount", f"Amount in {currency}", money.fmt(left, currency).split()[-1]),
                    Field("reason", "Reason (required)"),
                ],
                submit_label="Next",
            )
        )
        if not values or not values["amount"] or not values["reason"]:
            return
        try:
            amount = money.parse(values["amount"], currency)
        except ValueError as e:
            self._screen.status(str(e), error=True)
            return
        if not 0 < amount <= left:
            self._screen.status(
                f"amount: between {money.fmt(1, currency)} and {money.fmt(left, currency)}",
                error=True,
            )
            return
        if await self._confirm(
            "Refund this payment to the card?",
            inv,
            [f"Reason:   {values['reason']}", "The money goes back to the card it came from."],
            "Refund",
            amount=amount,
        ):
            await self._post(
                inv, "refund", {"amount": amount, "reason": values["reason"]}, "refunded"
            )
