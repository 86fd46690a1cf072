"""Self-contained HTML: the invoice document, the card page and the payment page.

Templates live beside this module (``templates/*.html``); every value is escaped
here, and JSON handed to a page's script cannot close its ``<script>`` element.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import json
from pathlib import Path
from string import Template
from typing import Any

from appliance.contract.billing import CardSetup, PayPage
from appliance.invoices.context import Billing
from appliance.invoices.models import Invoice
from billing.invoice import FlatLine, OnDemandLine, decode_invoice
from billing.money import CURRENCIES, format_amount
from billing.period import load_zone

_DIR = Path(__file__).with_name("templates")

_NOTES = {
    "draft": "Draft: awaiting an administrator's approval. Nothing has been charged.",
    "approved": "Approved; the saved card will be charged.",
    "charging": "The payment is being processed.",
    "requires_action": "The card issuer asks the cardholder to confirm this payment.",
    "paid": "Paid. Thank you.",
    "failed": "The last payment attempt failed; it will be retried.",
    "void": "Void: this invoice is cancelled and will not be charged.",
    "carried": "Below the minimum charge: carried forward to the next invoice.",
    "settled": "Nothing to pay: credits and discounts cover this invoice.",
    "refunded": "Refunded.",
}


@functools.cache
def _template(name: str) -> Template:
    return Template((_DIR / name).read_text(encoding="utf-8"))


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _script_json(value: Any) -> str:
    return json.dumps(value).replace("</", "<\\/")


def _local(value: dt.datetime | str, zone: dt.tzinfo) -> str:
    """An instant in the org's billing time zone, to the minute, zone named: the
    document speaks the same time as the TUI's Usage and Audit screens."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return _e(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)  # stored instants are naive UTC
    local = value.astimezone(zone)
    abbr = local.tzname() or ""
    return _e(f"{local:%Y-%m-%d %H:%M} {abbr if abbr[:1].isalpha() else zone}")


def _row(item: str, qty: str, amount: str) -> str:
    return f'<tr><td>{item}</td><td>{qty}</td><td class="amount">{amount}</td></tr>'


def render_invoice(inv: Invoice, cfg: Billing) -> str:
    rated = decode_invoice(inv.document.encode())
    cur = CURRENCIES[rated.currency]
    zone = load_zone(rated.timezone)

    def money(amount: int) -> str:
        return _e(format_amount(amount, cur))

    lines = []
    for line in rated.lines:
        if isinstance(line, OnDemandLine):
            hours, minutes = divmod(line.quantity_minutes, 60)
            lines.append(
                _row(
                    f"On-Demand {_e(line.item)} ({money(line.hourly)}/hour)",
                    f"{hours} h {minutes:02d} min",
                    money(line.amount),
                )
            )
        elif isinstance(line, FlatLine):
            lines.append(
                _row(
                    f"Flat plan {_e(line.item)}",
                    f"from {_local(line.start, zone)}",
                    money(line.amount),
                )
            )
    discounts = "".join(
        _row(f"Coupon {_e(d.code)} ({_e(d.applies_to)})", "", "−" + money(d.amount))
        for d in rated.discounts
    )
    credit = (
        _row("Credit applied", "", "−" + money(rated.credit_applied))
        if rated.credit_applied
        else ""
    )
    previous = (
        _row("Balance carried from an earlier month (not taxed)", "", money(rated.previous_balance))
        if rated.previous_balance
        else ""
    )
    adjustments = json.loads(inv.adjustments)
    adj = ""
    if adjustments:
        items = "".join(
            f"<li>{money(a['amount'])} credit: {_e(a['reason'])} "
            f"({_e(a['by'])}, {_local(a['at'], zone)})</li>"
            for a in adjustments
        )
        adj = (
            f'<div class="note">Adjustments (included in the credit applied):<ul>{items}</ul></div>'
        )
    issuer = cfg.issuer
    registration = (
        f"<br>Registration number: {_e(issuer.registration_number)}"
        if issuer.registration_number
        else ""
    )
    return _template("invoice.html").substitute(
        number=_e(inv.number),
        mode_badge='<span class="mode">TEST MODE</span>' if inv.mode == "test" else "",
        period=_e(rated.period),
        covered_from=_local(inv.covered_from, zone),
        covered_to=_local(inv.covered_to, zone),
        timezone=_e(rated.timezone),
        status=_e(inv.status),
        currency=_e(rated.currency),
        issuer_name=_e(issuer.name),
        issuer_address=_e(issuer.address),
        issuer_registration=registration,
        org=_e(inv.org.name),
        lines="\n".join(lines) or _row("No billable usage", "", money(0)),
        subtotal=money(rated.subtotal),
        discounts=discounts,
        credit=credit,
        net=money(rated.net),
        tax_rate=_e(rated.tax_rate),
        tax=money(rated.tax),
        previous=previous,
        total=money(rated.total),
        adjustments=adj,
        status_note=_e(_NOTES.get(inv.status, "")),
    )


def render_card_page(setup: CardSetup, cfg: Billing, complete_url: str) -> str:
    config = {
        "publishable_key": setup.publishable_key,
        "client_secret": setup.client_secret,
        "complete_url": complete_url,
    }
    return _template("card.html").substitute(
        org=_e(setup.org),
        js_url=_e(cfg.js_url),
        mode=_e(setup.mode),
        card=_e(setup.card or "none"),
        config=_script_json(config),
    )


def render_pay_page(page: PayPage, cfg: Billing, complete_url: str) -> str:
    cur = CURRENCIES[page.currency]
    config = {
        "publishable_key": page.publishable_key,
        "client_secret": page.client_secret,
        "payment_method": page.payment_method,
        "complete_url": complete_url,
    }
    return _template("pay.html").substitute(
        invoice=_e(page.invoice),
        js_url=_e(cfg.js_url),
        amount=_e(format_amount(page.total, cur)),
        status=_e(page.status),
        disabled="" if page.client_secret else "disabled",
        config=_script_json(config),
    )
