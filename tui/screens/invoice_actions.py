"""Approve, void, adjust, charge: each behind a confirmation that repeats the money."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.binding import Binding

from tui import money
from tui.screens.base import AppScreen, Failed
from tui.widgets.confirm import ConfirmModal
from tui.widgets.form import Field, FormModal


class InvoiceActions:
    """Mixed into a screen that has ``selected_invoice()`` and ``invoice_changed(doc)``."""

    ACTION_ROLES: ClassVar[dict[str, str]] = {
        "approve": "admin",
        "void": "admin",
        "adjust": "admin",
        "charge": "admin",
    }
    ACTION_BINDINGS: ClassVar[list[Binding]] = [
        Binding("a", "approve", "Approve"),
        Binding("v", "void", "Void"),
        Binding("j", "adjust", "Adjust"),
        Binding("c", "charge", "Charge/retry"),
    ]

    def selected_invoice(self) -> dict[str, Any] | None:
        raise NotImplementedError

    def invoice_changed(self, doc: dict[str, Any]) -> None:
        raise NotImplementedError

    @property
    def _screen(self) -> AppScreen:
        assert isinstance(self, AppScreen)
        return self

    def _start(self, fn: Any, *args: Any) -> None:
        self._screen.spawn(fn, *args, group="invoice-action", exclusive=True)

    async def _confirm(self, title: str, inv: dict[str, Any], extra: list[str], label: str) -> bool:
        amount = money.fmt(inv.get("total"), str(inv.get("currency", "")))
        lines = [
            f"Org:      {inv.get('org', '?')}",
            f"Invoice:  {inv.get('number', inv.get('id'))}  period {inv.get('period', '?')}",
            f"Amount:   {amount}",
            f"Currency: {inv.get('currency', '?')}   mode {inv.get('mode', '?')}",
            *extra,
        ]
        return bool(
            await self._screen.app.push_screen_wait(ConfirmModal(title, lines, confirm_label=label))
        )

    async def _post(self, inv: dict[str, Any], verb: str, body: Any, done: str) -> None:
        doc = await self._screen.call("POST", f"/api/v1/invoices/{inv['id']}/{verb}", body)
        if isinstance(doc, Failed):
            return
        self.invoice_changed(doc)
        self._screen.status(
            f"{doc.get('number')}: {done} → {doc.get('status')} "
            f"{money.fmt(doc.get('total'), str(doc.get('currency', '')))}"
            + (f"  [red]{doc['last_error']}[/]" if doc.get("last_error") else "")
        )

    # --- the actions --------------------------------------------------------------------

    def action_approve(self) -> None:
        if (inv := self.selected_invoice()) is not None:
            self._start(self._approve, inv)

    async def _approve(self, inv: dict[str, Any]) -> None:
        if inv.get("status") != "draft":
            self._screen.status(
                f"only a draft can be approved (this one is {inv.get('status')})", error=True
            )
            return
        if await self._confirm(
            "Approve and charge this invoice?",
            inv,
            ["The saved card is charged off-session for exactly this amount."],
            "Approve",
        ):
            await self._post(inv, "approve", {"expected_total": inv.get("total")}, "approved")

    def action_void(self) -> None:
        if (inv := self.selected_invoice()) is not None:
            self._start(self._void, inv)

    async def _void(self, inv: dict[str, Any]) -> None:
        values = await self._screen.app.push_screen_wait(
            FormModal(
                f"Void {inv.get('number')}",
                [Field("reason", "Reason (required)")],
                submit_label="Next",
            )
        )
        if not values or not values["reason"]:
            return
        if await self._confirm(
            "Void this invoice?", inv, [f"Reason:   {values['reason']}"], "Void"
        ):
            await self._post(inv, "void", {"reason": values["reason"]}, "voided")

    def action_adjust(self) -> None:
        if (inv := self.selected_invoice()) is not None:
            self._start(self._adjust, inv)

    async def _adjust(self, inv: dict[str, Any]) -> None:
        currency = str(inv.get("currency", ""))
        values = await self._screen.app.push_screen_wait(
            FormModal(
                f"Adjust {inv.get('number')} (a credit, in {currency})",
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

    async def _charge(self, inv: dict[str, Any]) -> None:
        if inv.get("status") not in ("approved", "failed", "requires_action"):
            self._screen.status(
                f"nothing to charge: the invoice is {inv.get('status')}", error=True
            )
            return
        if await self._confirm("Charge this invoice now?", inv, [], "Charge"):
            await self._post(inv, "charge", None, "charged")
