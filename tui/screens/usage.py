"""Usage: this month so far per entitlement and per group, with prices from the catalog."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from textual.app import ComposeResult
from textual.widgets import Static

from appliance.contract.billing import Quote
from appliance.contract.entitlements import Catalog, Entitlements, Intervals
from appliance.contract.usage import Usage
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


def hours_by_entitlement(intervals: Intervals) -> dict[str, float]:
    """Hours each On-Demand tier ran in the intervals the entitlements API lists."""
    out: dict[str, float] = {}
    for iv in intervals.on_demand:
        start = dt.datetime.fromisoformat(iv.start)
        end = dt.datetime.fromisoformat(iv.end)
        key = f"on_demand:{iv.tier}"
        out[key] = out.get(key, 0.0) + (end - start).total_seconds() / 3600
    return out


def price_of(name: str, catalog: Catalog) -> str:
    cur = catalog.currency
    kind, _, item = name.partition(":")
    if kind == "on_demand" and item in catalog.on_demand:
        return money.fmt(catalog.on_demand[item].hourly, cur) + "/h"
    if kind == "flat" and item in catalog.flat:
        plan = catalog.flat[item]
        return f"{money.fmt(plan.price, cur)}/{plan.days}d"
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
        ents = await self.call_as(Entitlements, "GET", "/api/v1/entitlements")
        usage = await self.call_as(Usage, "GET", "/api/v1/usage")
        catalog = await self.call_as(Catalog, "GET", "/api/v1/entitlements/catalog")
        if isinstance(ents, Failed) or isinstance(usage, Failed) or isinstance(catalog, Failed):
            return
        start = month_start(ents.timezone)
        intervals = await self.call_as(
            Intervals,
            "GET",
            "/api/v1/entitlements/intervals",
            start=start.isoformat(),
            end=dt.datetime.now(dt.UTC).isoformat(),
        )
        hours = {} if isinstance(intervals, Failed) else hours_by_entitlement(intervals)
        self.show_usage(ents, usage, catalog, hours, start)
        self.fresh()
        quote = await self.call_as(Quote, "GET", "/api/v1/billing/quote")
        if isinstance(quote, Failed):
            forbidden = quote.error.status == 403
            self.show_quote(None, "needs the admin role" if forbidden else quote.error.message)
        else:
            self.show_quote(quote)

    def show_quote(self, quote: Quote | None, why: str = "") -> None:
        """The month-to-date quote, line by line so it adds up: subtotal − discounts −
        credit = net; + tax + previous balance = total."""
        if quote is None:
            text = f"quote at today's close: {why}"
        else:
            cur = quote.currency
            discounts = sum(d.amount for d in quote.discounts)
            previous = quote.previous_balance
            text = (
                f"if {quote.period} closed now: subtotal {fmt(quote.subtotal, cur)}"
                f" − discounts {fmt(discounts, cur)} − credit {fmt(quote.credit_applied, cur)}"
                f" = net {fmt(quote.net, cur)}; + tax {fmt(quote.tax, cur)}"
                + (f" + previous balance {fmt(previous, cur)}" if previous else "")
                + f" = total [b]{fmt(quote.total, cur)}[/] ({quote.status})"
            )
        self.query_one("#quote", Static).update(text)

    def show_usage(
        self,
        ents: Entitlements,
        usage: Usage,
        catalog: Catalog,
        hours: dict[str, float],
        since: dt.datetime,
    ) -> None:
        rows: dict[str, tuple[str, ...]] = {}
        for name, e in ents.in_use.items():
            rows[name] = (
                name + (" (default)" if name == ents.default else ""),
                str(e.capacity),
                str(e.running),
                f"{hours.get(name, 0.0):,.2f}",
                price_of(name, catalog),
            )
        free = ents.free_tier
        rows["free"] = (
            "free tier" + ("" if free.active else " (expired)"),
            str(free.capacity),
            "-",
            "-",
            f"free until {self.mm.time.date(free.until)}",
        )
        for w in ents.flat:
            key = f"flat:{w.plan}:{w.id}"
            rows[key] = (
                f"flat {w.plan} {self.mm.time.date(w.start)}→{self.mm.time.date(w.end)}",
                str(w.capacity),
                w.state,
                "-",
                price_of(f"flat:{w.plan}", catalog),
            )
        self.query_one("#entitlements", ResourceTable).show(rows)
        self.query_one("#usage-groups", ResourceTable).show(
            {n: (n, f"{s / 3600:,.2f}", f"{s:,.0f}") for n, s in sorted(usage.groups.items())}
        )
        self.query_one("#summary", Static).update(
            f"this month since {self.mm.time.at(since)}   device-hours "
            f"[b]{usage.device_seconds / 3600:.2f}[/]   currency {catalog.currency}"
        )
        self.query_one("#quote", Static).update("quote at today's close: asking the appliance…")
