"""Usage: this month so far per entitlement and per group, with prices from the catalog."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from textual.app import ComposeResult
from textual.widgets import Static

from tui import money
from tui.money import fmt
from tui.screens.base import AppScreen, Failed
from tui.widgets.table import Col, ResourceTable

ENT_COLUMNS = (
    Col("entitlement", min=10),
    Col("capacity", num=True),
    Col("running", num=True),
    Col("hours", num=True),
    Col("price", min=8),
)
GROUP_COLUMNS = (
    Col("group", min=8),
    Col("device-hours", num=True),
    Col("device-seconds", num=True, drop=1),
)


def month_start(timezone: str, now: dt.datetime | None = None) -> dt.datetime:
    zone = ZoneInfo(timezone)
    local = (now or dt.datetime.now(dt.UTC)).astimezone(zone)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def hours_by_entitlement(intervals: dict[str, list[dict[str, str]]]) -> dict[str, float]:
    """Hours each On-Demand tier ran in the intervals the entitlements API lists."""
    out: dict[str, float] = {}
    for iv in intervals.get("on_demand", []):
        start = dt.datetime.fromisoformat(iv["start"])
        end = dt.datetime.fromisoformat(iv["end"])
        key = f"on_demand:{iv.get('tier') or iv.get('item')}"
        out[key] = out.get(key, 0.0) + (end - start).total_seconds() / 3600
    return out


def price_of(name: str, catalog: dict[str, Any]) -> str:
    cur = str(catalog.get("currency", ""))
    kind, _, item = name.partition(":")
    if kind == "on_demand" and item in catalog.get("on_demand", {}):
        return money.fmt(catalog["on_demand"][item]["hourly"], cur) + "/h"
    if kind == "flat" and item in catalog.get("flat", {}):
        plan = catalog["flat"][item]
        return f"{money.fmt(plan['price'], cur)}/{plan['days']}d"
    return "free" if kind == "free" else "-"


class UsageScreen(AppScreen):
    MODE = "usage"
    POLL_S = 15.0

    def compose_body(self) -> ComposeResult:
        yield Static("", id="summary", classes="summary")
        yield ResourceTable(*ENT_COLUMNS, id="entitlements")
        yield ResourceTable(*GROUP_COLUMNS, id="usage-groups")
        yield Static("", id="quote", classes="summary")

    async def load(self) -> None:
        ents = await self.call("GET", "/api/v1/entitlements")
        usage = await self.call("GET", "/api/v1/usage")
        catalog = await self.call("GET", "/api/v1/entitlements/catalog")
        if any(isinstance(x, Failed) for x in (ents, usage, catalog)):
            return
        start = month_start(str(ents.get("timezone", "UTC")))
        intervals = await self.call(
            "GET",
            "/api/v1/entitlements/intervals",
            start=start.isoformat(),
            end=dt.datetime.now(dt.UTC).isoformat(),
        )
        hours = {} if isinstance(intervals, Failed) else hours_by_entitlement(intervals)
        self.show_usage(ents, usage, catalog, hours, start)
        self.fresh()
        quote = await self.call("GET", "/api/v1/billing/quote")
        if isinstance(quote, Failed):
            forbidden = quote.error.status == 403
            self.show_quote(None, "needs the admin role" if forbidden else quote.error.message)
        else:
            self.show_quote(quote)

    def show_quote(self, quote: dict[str, Any] | None, why: str = "") -> None:
        """The month-to-date quote, line by line so it adds up: subtotal − discounts −
        credit = net; + tax + previous balance = total."""
        if quote is None:
            text = f"quote at today's close: {why}"
        else:
            cur = str(quote.get("currency", ""))
            discounts = sum(int(d.get("amount", 0)) for d in quote.get("discounts") or [])
            credit = int(quote.get("credit_applied") or 0)
            previous = int(quote.get("previous_balance") or 0)
            text = (
                f"if {quote.get('period')} closed now: subtotal {fmt(quote.get('subtotal'), cur)}"
                f" − discounts {fmt(discounts, cur)} − credit {fmt(credit, cur)}"
                f" = net {fmt(quote.get('net'), cur)}; + tax {fmt(quote.get('tax'), cur)}"
                + (f" + previous balance {fmt(previous, cur)}" if previous else "")
                + f" = total [b]{fmt(quote.get('total'), cur)}[/] ({quote.get('status')})"
            )
        self.query_one("#quote", Static).update(text)

    def show_usage(
        self,
        ents: dict[str, Any],
        usage: dict[str, Any],
        catalog: dict[str, Any],
        hours: dict[str, float],
        since: dt.datetime,
    ) -> None:
        rows: dict[str, tuple[str, ...]] = {}
        for name, e in (ents.get("in_use") or {}).items():
            rows[name] = (
                name + (" (default)" if name == ents.get("default") else ""),
                str(e.get("capacity", "")),
                str(e.get("running", 0)),
                f"{hours.get(name, 0.0):,.2f}",
                price_of(name, catalog),
            )
        free = ents.get("free_tier") or {}
        if free:
            rows["free"] = (
                "free tier" + ("" if free.get("active") else " (expired)"),
                str(free.get("capacity", "")),
                "-",
                "-",
                f"free until {self.mm.time.date(free.get('until'))}",
            )
        for w in ents.get("flat") or []:
            key = f"flat:{w.get('plan')}:{w.get('id')}"
            rows[key] = (
                f"flat {w.get('plan')} {self.mm.time.date(w.get('start'))}→"
                f"{self.mm.time.date(w.get('end'))}",
                str(w.get("capacity", "")),
                str(w.get("state", "")),
                "-",
                price_of(f"flat:{w.get('plan')}", catalog),
            )
        self.query_one("#entitlements", ResourceTable).show(rows)
        groups = usage.get("groups") or {}
        self.query_one("#usage-groups", ResourceTable).show(
            {n: (n, f"{s / 3600:,.2f}", f"{s:,.0f}") for n, s in sorted(groups.items())}
        )
        self.query_one("#summary", Static).update(
            f"this month since {self.mm.time.at(since)}   device-hours "
            f"[b]{float(usage.get('device_seconds', 0)) / 3600:.2f}[/]   currency "
            f"{catalog.get('currency', '?')}"
        )
        self.query_one("#quote", Static).update("quote at today's close: asking the appliance…")
