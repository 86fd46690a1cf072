"""Entitlements: what the org holds, the catalog, On-Demand tier and Flat Plans."""

from __future__ import annotations

import msgspec
from litestar import delete, get, post, put
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody

from appliance import auth, models
from appliance.api import Id, call
from appliance.audit.http import actor_of
from appliance.contract.entitlements import Catalog, Entitlements, FlatWindow, Intervals
from appliance.entitlements import catalog, jobs, service
from appliance.schedule import clock

ADMIN = {"role": "admin", "audited": True}


class OnDemand(msgspec.Struct, forbid_unknown_fields=True):
    tier: str
    """cn10, cn20, ... (GET /api/v1/entitlements/catalog)."""


class Default(msgspec.Struct, forbid_unknown_fields=True):
    entitlement: str
    """on_demand:<tier>, free or flat:<plan>: what groups without their own run under."""


class BuyFlat(msgspec.Struct, forbid_unknown_fields=True):
    plan: str
    start: str | None = None
    """ISO 8601 with a UTC offset (2026-10-20T00:00:00+09:00); default: now."""


@get("/api/v1/entitlements")
async def get_entitlements(caller: auth.CallerParam) -> Entitlements:
    """Default entitlement, free tier, flat windows, and capacity in use per entitlement."""
    return await call(service.summary, caller.org_id)


@get("/api/v1/entitlements/catalog")
async def get_catalog(caller: auth.CallerParam) -> Catalog:
    """Tiers and plans with prices in the org's currency (integers, minor units)."""

    def q() -> Catalog:
        currency = models.Org.get_by_id(caller.org_id).currency
        return msgspec.convert({"currency": currency, **catalog.for_currency(currency)}, Catalog)

    return await call(q)


@put("/api/v1/entitlements/on-demand", opt=ADMIN)
async def put_on_demand(caller: auth.CallerParam, data: JSONBody[OnDemand]) -> Entitlements:
    """Pick the On-Demand tier; groups without their own entitlement run under it."""
    return await call(service.set_on_demand, caller.org_id, data.tier, actor=actor_of(caller))


@put("/api/v1/entitlements/default", opt=ADMIN)
async def put_default(caller: auth.CallerParam, data: JSONBody[Default]) -> Entitlements:
    return await call(service.set_default, caller.org_id, data.entitlement, actor=actor_of(caller))


@post("/api/v1/entitlements/flat", status_code=201, opt=ADMIN)
async def buy_flat(caller: auth.CallerParam, data: JSONBody[BuyFlat], state: State) -> FlatWindow:
    """Buy a Flat Plan window; it activates at ``start`` and ends ``days`` later."""
    start = clock.parse(data.start, "start")
    doc = await call(service.buy_flat, caller.org_id, data.plan, start, actor=actor_of(caller))
    touched = await call(service.apply_due)  # a window starting now is active on return
    if touched:
        await state.bus.publish_desired(touched)
    jobs.kick()  # plan its edges
    return await call(service.window, caller.org_id, doc.id)


@delete("/api/v1/entitlements/flat/{window_id:int}", status_code=200, opt=ADMIN)
async def cancel_flat(caller: auth.CallerParam, window_id: FromPath[Id]) -> FlatWindow:
    """Cancel a window that has not started yet."""
    doc = await call(service.cancel_flat, caller.org_id, window_id, actor=actor_of(caller))
    jobs.kick()
    return doc


@get("/api/v1/entitlements/intervals")
async def get_intervals(
    caller: auth.CallerParam, start: FromQuery[str], end: FromQuery[str]
) -> Intervals:
    """What billing rates for [start, end): On-Demand intervals and flat window starts."""
    since = clock.parse(start, "start")
    until = clock.parse(end, "end")
    assert since is not None and until is not None
    inputs = await call(service.billing_inputs, caller.org_id, since, until)
    return service.intervals_doc(inputs)


ROUTES = [
    get_entitlements,
    get_catalog,
    put_on_demand,
    put_default,
    buy_flat,
    cancel_flat,
    get_intervals,
]
