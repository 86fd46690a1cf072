"""The invoice ``rate`` produces, and its one JSON form (DESIGN.md §4.1, "Output").

Field order is the contract's, with extra fields after the required ones, so
the JSON reads like the spec and diffs between two quotes stay small. Lines are
tagged by ``kind``; the same structs decode a stored draft back (see
:func:`decode_invoice`), which is how the appliance keeps what an admin approved.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

import msgspec

Status = Literal["nothing_due", "below_minimum", "chargeable"]
SkipReason = Literal[
    "redeemed_after_period",
    "currency_mismatch",
    "already_used",
    "expired",
    "nothing_eligible",
    "nothing_remaining",
    "rounds_to_zero",
]


class OnDemandLine(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="on_demand"):
    item: str
    """The tier name."""
    quantity_minutes: int
    amount: int
    hourly: int
    """The tier's price per hour the amount was computed from."""


class FlatLine(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="flat"):
    item: str
    """The plan name."""
    amount: int
    start: datetime
    """When the plan's window starts, in the billing time zone."""


Line = OnDemandLine | FlatLine


class Discount(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    amount: int
    applies_to: str


class NotApplied(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    reason: SkipReason
    """Stable, for scripts."""
    detail: str
    """For people."""


class Invoice(msgspec.Struct, frozen=True, kw_only=True):
    currency: str
    period: str
    lines: list[Line]
    subtotal: int
    discounts: list[Discount]
    """In the order they were applied; only coupons that took something off."""
    not_applied: list[NotApplied]
    """In the order the coupons were listed."""
    credit_applied: int
    credit_remaining: int
    net: int
    tax: int
    previous_balance: int
    total: int
    status: Status
    carried_forward: int
    timezone: str
    period_start: datetime
    period_end: datetime
    """Exclusive."""
    tax_rate: Decimal
    minimum_charge: int


_ENCODER = msgspec.json.Encoder(decimal_format="number")


def encode_invoice(invoice: Invoice, *, indent: int = 0) -> bytes:
    """The invoice as JSON; same invoice, same bytes."""
    raw = _ENCODER.encode(invoice)
    return msgspec.json.format(raw, indent=indent) if indent else raw


def decode_invoice(raw: bytes) -> Invoice:
    """Read back what :func:`encode_invoice` wrote (a stored draft)."""
    return msgspec.json.decode(raw, type=Invoice, strict=True)
