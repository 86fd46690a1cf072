"""The billing mails' words: pure functions from an invoice's facts to (subject, body)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from billing.money import currency, format_amount


def amount(total: int, code: str) -> str:
    return format_amount(total, currency(code))


def pay_link(number: str, total: int, code: str, url: str, days: int) -> tuple[str, str]:
    subject = f"Action needed: confirm the payment of invoice {number} ({amount(total, code)})"
    body = (
        f"Your bank asks you to confirm the payment of invoice {number} "
        f"({amount(total, code)}).\n\n"
        f"Confirm it here (the link is valid for {days} days):\n{url}\n\n"
        "Until it is confirmed, the invoice stays unpaid and no further attempt is made.\n"
    )
    return subject, body


def payment_failed(
    number: str, total: int, code: str, reason: str, next_retry: dt.datetime | None, tz: str
) -> tuple[str, str]:
    subject = f"Payment failed for invoice {number} ({amount(total, code)}): {reason}"
    if next_retry is not None:
        when = next_retry.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %Z")
        plan = f"We will try again on {when}. "
    else:
        plan = "There will be no further automatic attempt. "
    body = (
        f"The payment of invoice {number} ({amount(total, code)}) was declined: {reason}.\n\n"
        f"{plan}To use another card, ask your administrator for a new card link.\n"
    )
    return subject, body


def draft_ready(
    org: str, number: str, total: int, code: str, period: str, invoice_id: int, base: str
) -> tuple[str, str]:
    subject = f"Invoice {number} for {org} ({amount(total, code)}) awaits your approval"
    body = (
        f"The invoice {number} of {org} for {period} is drafted: {amount(total, code)}.\n\n"
        "Nothing is charged until an admin approves it: in the TUI (Billing, `a`), or\n"
        f"  POST {base}/api/v1/invoices/{invoice_id}/approve\n"
        f"Its document: {base}/api/v1/invoices/{invoice_id}/document\n"
    )
    return subject, body
