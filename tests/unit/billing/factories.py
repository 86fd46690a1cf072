"""Scenario documents and a one-call quote, so rating tests read as stories."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from billing import decode_scenario, encode_invoice, rate

CATALOG: dict[str, Any] = {
    "on_demand": {
        "cn10": {"capacity": 10, "hourly": 120},
        "cn20": {"capacity": 20, "hourly": 200},
    },
    "flat": {"flat10-30d": {"capacity": 10, "days": 30, "price": 30000}},
    "free_tier": {"capacity": 1, "days": 365},
}

# The keys DESIGN.md §4.1 requires, and the ones each nested record requires.
CONTRACT_KEYS = (
    "currency",
    "period",
    "lines",
    "subtotal",
    "discounts",
    "not_applied",
    "credit_applied",
    "credit_remaining",
    "net",
    "tax",
    "previous_balance",
    "total",
    "status",
    "carried_forward",
)
_LINE_KEYS = ("kind", "item", "quantity_minutes", "amount")


def jst(day: int, hour: int = 0, minute: int = 0, second: int = 0, month: int = 10) -> str:
    """An instant in Asia/Tokyo (+09:00) in 2026, as a scenario writes it."""
    return f"2026-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}+09:00"


def scenario(**fields: Any) -> dict[str, Any]:
    """A JPY, Asia/Tokyo, 2026-10, 10 % tax scenario with nothing used; override any key."""
    doc: dict[str, Any] = {
        "currency": "JPY",
        "period": "2026-10",
        "timezone": "Asia/Tokyo",
        "tax_rate": 10,
        "registered_at": "2025-12-01T09:00:00+09:00",
        "catalog": json.loads(json.dumps(CATALOG)),
        "on_demand": [],
        "flat": [],
        "coupons": [],
        "coupons_used": {},
        "credit_balance": 0,
        "carried_forward": 0,
    }
    doc.update(fields)
    return doc


def use(tier: str, start: str, end: str) -> dict[str, str]:
    return {"tier": tier, "start": start, "end": end}


def buy(plan: str, start: str) -> dict[str, str]:
    return {"plan": plan, "start": start}


def percent(code: str, pct: float | str, redeemed_at: str, **extra: Any) -> dict[str, Any]:
    base = {"code": code, "percent_off": pct, "applies_to": "all", "duration": "forever"}
    return {**base, "redeemed_at": redeemed_at, **extra}


def amount(code: str, off: int, redeemed_at: str, **extra: Any) -> dict[str, Any]:
    base = {"code": code, "amount_off": off, "currency": "JPY", "applies_to": "all"}
    return {**base, "duration": "forever", "redeemed_at": redeemed_at, **extra}


_JSON = msgspec.json.Encoder(decimal_format="number")


def raw(doc: dict[str, Any]) -> bytes:
    """JSON bytes; a Decimal is written as a JSON number (8.875), digit for digit."""
    return _JSON.encode(doc)


def quote(doc: dict[str, Any]) -> dict[str, Any]:
    """Rate a scenario document end to end (decode → rate → JSON) and read it back."""
    result: dict[str, Any] = json.loads(encode_invoice(rate(decode_scenario(raw(doc)))))
    return result


def contract(invoice: dict[str, Any]) -> dict[str, Any]:
    """Only the contract's keys, lines and discounts included, extras dropped."""
    view = {key: invoice[key] for key in CONTRACT_KEYS}
    view["lines"] = [{k: line[k] for k in _LINE_KEYS if k in line} for line in invoice["lines"]]
    view["discounts"] = [{"code": d["code"], "amount": d["amount"]} for d in invoice["discounts"]]
    view["not_applied"] = [
        {"code": n["code"], "reason": n["reason"]} for n in invoice["not_applied"]
    ]
    return view
