"""What an org may run now, the windows it bought, and the intervals billing rates.

- ``check_capacity(group)``: 409 with a clear message when a start or a scale
  would not fit (free tier over or full, no active flat window, tier full).
- ``run_started``/``run_stopped``: the group service calls them inside its
  start/stop transaction; they open and close an :class:`EntitlementInterval`.
- ``apply_due()``: the one code path for time: activates and ends flat
  windows (each exactly once, even when caught up after downtime), closes
  orphaned intervals. ``over_capacity()`` reports the groups their entitlement
  no longer admits; entitlements report, a job stops: ``jobs.apply_due`` runs
  both and has the groups service stop them. The scheduler calls it at every
  window edge and periodically; so does start-up.
- ``billing_inputs(org, start, end)``: the ``on_demand``/``flat`` lists of
  DESIGN §4.1 for a period.
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import msgspec

from appliance import models
from appliance.audit import service as audit
from appliance.contract import entitlements as contract
from appliance.entitlements import catalog
from appliance.entitlements.models import EntitlementInterval, FlatWindow
from appliance.errors import ApplianceError, Conflict, NotFound
from appliance.schedule import clock, once
from billing.scenario import FlatPurchase, UsageInterval

log = logging.getLogger(__name__)

PAST_GRACE = dt.timedelta(minutes=5)
"""A flat window may start this far in the past (clock skew, a slow form); no further."""


def _naive(instant: dt.datetime) -> dt.datetime:
    return clock.aware(instant).astimezone(dt.UTC).replace(tzinfo=None)


def _local(instant: dt.datetime, tz: str) -> dt.datetime:
    return clock.aware(instant).astimezone(zoneinfo.ZoneInfo(tz))


def _iso(instant: dt.datetime | None, tz: str = "UTC") -> str | None:
    return None if instant is None else _local(instant, tz).isoformat()


def resolve(group: models.Group) -> str:
    """The entitlement a group runs under: its own, else its org's default."""
    return group.entitlement or group.org.default_entitlement


def free_tier_end(org: models.Org) -> dt.datetime:
    return org.registered_at + dt.timedelta(days=int(catalog.FREE_TIER["days"]))


def _active_windows(org_id: int, plan: str, now: dt.datetime) -> list[FlatWindow]:
    return list(
        FlatWindow.select().where(
            FlatWindow.org == org_id,
            FlatWindow.plan == plan,
            FlatWindow.state.in_(("scheduled", "active")),
            FlatWindow.start <= now,
            FlatWindow.end > now,
        )
    )


def available(org: models.Org, entitlement: str, now: dt.datetime | None = None) -> tuple[int, str]:
    """(capacity the org holds under ``entitlement`` now, why it is 0 when it is)."""
    now = now or clock.utcnow()
    kind, item = catalog.parse(entitlement)
    if kind == "on_demand":
        return catalog.ON_DEMAND_TIERS[item], ""
    if kind == "free":
        end = free_tier_end(org)
        if now >= end:
            return 0, f"the free tier ended on {_iso(end, org.timezone)}"
        return catalog.FREE_CAPACITY, ""
    windows = _active_windows(org.id, item, now)
    if windows:
        return sum(w.capacity for w in windows), ""
    nxt = (
        FlatWindow.select()
        .where(
            FlatWindow.org == org.id,
            FlatWindow.plan == item,
            FlatWindow.state == "scheduled",
            FlatWindow.start > now,
        )
        .order_by(FlatWindow.start)
        .first()
    )
    why = f"no active window of flat plan {item!r}"
    if nxt is not None:
        why += f" (the next starts {_iso(nxt.start, org.timezone)})"
    else:
        why += " (buy one: POST /api/v1/entitlements/flat)"
    return 0, why


def _orgs_running() -> set[int]:
    running = models.Group.select(models.Group.org).where(models.Group.state == "running")
    return {g.org_id for g in running}


def _held(org_id: int, exclude_group: int | None = None) -> list[tuple[models.Group, str]]:
    """Running groups of the org with the entitlement each one holds."""
    groups = [
        g
        for g in models.Group.select().where(
            models.Group.org == org_id, models.Group.state == "running"
        )
        if g.id != exclude_group
    ]
    if not groups:
        return []
    open_rows = EntitlementInterval.select().where(
        EntitlementInterval.group_id.in_([g.id for g in groups]),
        EntitlementInterval.end.is_null(),
    )
    holds = {r.group_id: ("free" if r.kind == "free" else f"{r.kind}:{r.item}") for r in open_rows}
    return [(g, holds.get(g.id) or resolve(g)) for g in groups]


def check_capacity(group: models.Group, count: int | None = None) -> None:
    """Raise 409 unless ``count`` (default: the group's) mocks fit its entitlement now."""
    org = group.org
    ent = resolve(group)
    need = group.count if count is None else count
    cap, why = available(org, ent)
    if cap == 0:
        raise Conflict(f"group {group.name!r}: entitlement {ent}: {why}")
    used = sum(g.count for g, held in _held(org.id, exclude_group=group.id) if held == ent)
    if used + need > cap:
        raise Conflict(
            f"group {group.name!r}: {need} mocks do not fit entitlement {ent} "
            f"(capacity {cap}, {used} already running under it)"
        )


def run_started(group: models.Group) -> None:
    """Open the interval of this run (inside the group service's transaction)."""
    ent = resolve(group)
    kind, item = catalog.parse(ent)
    cap, _ = available(group.org, ent)
    EntitlementInterval.create(
        org=group.org_id,
        kind=kind,
        item=item,
        capacity=cap,
        group_id=group.id,
        run_id=group.run_id,
        start=clock.utcnow(),
    )


def run_stopped(group: models.Group) -> None:
    """Close this group's open intervals (a stop, a delete, an enforced stop)."""
    EntitlementInterval.update(end=clock.utcnow()).where(
        EntitlementInterval.group_id == group.id, EntitlementInterval.end.is_null()
    ).execute()


# --- choosing and buying --------------------------------------------------------------


def set_default(org_id: int, entitlement: str, *, actor: str) -> contract.Entitlements:
    """The entitlement groups without their own run under."""
    catalog.parse(entitlement)
    with audit.write_transaction():
        org = models.Org.get_by_id(org_id)
        before = org.default_entitlement
        if before != entitlement:
            org.default_entitlement = entitlement
            org.save()
            audit.record(
                "entitlement.default",
                actor=actor,
                org_id=org_id,
                target=f"org:{org_id}",
                before={"default_entitlement": before},
                after={"default_entitlement": entitlement},
            )
    return summary(org_id)


def set_on_demand(org_id: int, tier: str, *, actor: str) -> contract.Entitlements:
    """Pick the org's On-Demand tier (and make On-Demand its default)."""
    if tier not in catalog.ON_DEMAND_TIERS:
        known = ", ".join(catalog.ON_DEMAND_TIERS)
        raise ApplianceError(f"tier: unknown On-Demand tier {tier!r} (known: {known})")
    return set_default(org_id, f"on_demand:{tier}", actor=actor)


def window_of(w: FlatWindow, tz: str = "UTC") -> contract.FlatWindow:
    return contract.FlatWindow(
        id=w.id,
        plan=w.plan,
        capacity=w.capacity,
        days=w.days,
        price=w.price,
        currency=w.currency,
        start=_iso(w.start, tz),
        end=_iso(w.end, tz),
        state=w.state,
    )


def window_doc(w: FlatWindow, tz: str = "UTC") -> dict[str, Any]:
    """The window as the audit log records it."""
    doc: dict[str, Any] = msgspec.to_builtins(window_of(w, tz))
    return doc


def buy_flat(
    org_id: int, plan: str, start: dt.datetime | None, *, actor: str
) -> contract.FlatWindow:
    """Buy a Flat Plan window from ``start`` (default: now); its cost arises at the start."""
    if plan not in catalog.FLAT_PLANS:
        known = ", ".join(catalog.FLAT_PLANS)
        raise ApplianceError(f"plan: unknown flat plan {plan!r} (known: {known})")
    now = clock.utcnow()
    begin = now if start is None else _naive(start)
    if begin < now - PAST_GRACE:
        raise ApplianceError(f"start: {_iso(begin)} is in the past; pick now or a later time")
    spec = catalog.FLAT_PLANS[plan]
    with audit.write_transaction():
        org = models.Org.get_by_id(org_id)
        price = catalog.for_currency(org.currency)["flat"][plan]["price"]
        w = FlatWindow.create(
            org=org_id,
            plan=plan,
            capacity=spec["capacity"],
            days=spec["days"],
            price=price,
            currency=org.currency,
            start=begin,
            end=begin + dt.timedelta(days=int(spec["days"])),
            created_by=actor,
        )
        doc = window_of(w, org.timezone)
        audit.record(
            "flat.buy",
            actor=actor,
            org_id=org_id,
            target=f"flat:{w.id}",
            after=msgspec.to_builtins(doc),
        )
    return doc


def window(org_id: int, window_id: int) -> contract.FlatWindow:
    w = FlatWindow.get_or_none(FlatWindow.id == window_id, FlatWindow.org == org_id)
    if w is None:
        raise NotFound(f"flat window {window_id} not found in this org")
    return window_of(w, w.org.timezone)


def cancel_flat(org_id: int, window_id: int, *, actor: str) -> contract.FlatWindow:
    """Cancel a window that has not started (a started one has already cost its price)."""
    with audit.write_transaction():
        w = FlatWindow.get_or_none(FlatWindow.id == window_id, FlatWindow.org == org_id)
        if w is None:
            raise NotFound(f"flat window {window_id} not found in this org")
        if w.state != "scheduled" or w.start <= clock.utcnow():
            raise Conflict(f"flat window {window_id} has already started; it runs to its end")
        tz = w.org.timezone
        before = window_doc(w, tz)
        w.state = "cancelled"
        w.save()
        audit.record(
            "flat.cancel",
            actor=actor,
            org_id=org_id,
            target=f"flat:{w.id}",
            before=before,
            after=window_doc(w, tz),
        )
    return window_of(w, tz)


# --- time: the one code path for jobs, catch-up and tests ----------------------------


def _activate(w: FlatWindow, now: dt.datetime) -> None:
    before = window_doc(w)
    w.state = "active"
    w.save()
    EntitlementInterval.create(
        org=w.org_id,
        kind="flat",
        item=w.plan,
        capacity=w.capacity,
        window_id=w.id,
        start=w.start,
        end=w.end,
    )
    after = {**window_doc(w), "late_s": round((now - w.start).total_seconds(), 3)}
    audit.record(
        "flat.start",
        actor=audit.SCHEDULER,
        org_id=w.org_id,
        target=f"flat:{w.id}",
        before=before,
        after=after,
    )


def _end(w: FlatWindow, now: dt.datetime) -> None:
    before = window_doc(w)
    w.state = "ended"
    w.save()
    after = {**window_doc(w), "late_s": round((now - w.end).total_seconds(), 3)}
    audit.record(
        "flat.end",
        actor=audit.SCHEDULER,
        org_id=w.org_id,
        target=f"flat:{w.id}",
        before=before,
        after=after,
    )


@dataclass(frozen=True)
class Overage:
    """A running group its entitlement no longer admits: stopping it is the caller's job."""

    org_id: int
    org_name: str
    group: str
    entitlement: str
    count: int
    reason: str


def over_capacity(now: dt.datetime | None = None) -> list[Overage]:
    """Running groups to stop so every entitlement is back within capacity (newest first).

    Only reads: the groups service stops them (``groups.service.stop_over_capacity``), so
    this module never imports the one that calls it on every start and scale.
    """
    now = _naive(now) if now is not None else clock.utcnow()
    over: list[Overage] = []
    for org_id in sorted(_orgs_running()):
        org = models.Org.get_by_id(org_id)
        by_ent: dict[str, list[models.Group]] = defaultdict(list)
        for g, held in _held(org_id):
            by_ent[held].append(g)
        for ent, running in by_ent.items():
            try:
                cap, why = available(org, ent, now)
            except ApplianceError:
                cap, why = 0, "the entitlement is no longer in the catalog"
            used = sum(g.count for g in running)
            running.sort(key=lambda g: g.started_at or dt.datetime.min, reverse=True)
            for g in running:
                if used <= cap:
                    break
                reason = why or f"entitlement {ent} now admits {cap} mocks"
                over.append(Overage(org_id, org.name, g.name, ent, g.count, reason))
                used -= g.count
    return over


def _close_orphans(now: dt.datetime) -> None:
    """Intervals left open by a group that stopped or vanished without telling us."""
    rows = list(
        EntitlementInterval.select().where(
            EntitlementInterval.group_id.is_null(False), EntitlementInterval.end.is_null()
        )
    )
    if not rows:
        return
    groups = {
        g.id: g
        for g in models.Group.select().where(models.Group.id.in_([r.group_id for r in rows]))
    }
    for r in rows:
        g = groups.get(r.group_id)
        if g is not None and g.state == "running" and g.run_id == r.run_id:
            continue
        end = g.stopped_at if g is not None and g.stopped_at and g.stopped_at >= r.start else now
        EntitlementInterval.update(end=end).where(EntitlementInterval.id == r.id).execute()


def apply_due(now: dt.datetime | None = None) -> None:
    """Apply every window edge that is due, each exactly once; close orphaned intervals.

    Groups that no longer fit are reported by :func:`over_capacity`; the entitlement job
    stops them right after (``entitlements.jobs.apply_due``).
    """
    now = _naive(now) if now is not None else clock.utcnow()
    starting = FlatWindow.select().where(FlatWindow.state == "scheduled", FlatWindow.start <= now)
    for w in list(starting.order_by(FlatWindow.start)):
        once.apply_once(
            f"flat.start:{w.id}",
            lambda w=w: _activate(FlatWindow.get_by_id(w.id), now),
            due_at=w.start,
        )
    ending = FlatWindow.select().where(FlatWindow.state == "active", FlatWindow.end <= now)
    for w in list(ending.order_by(FlatWindow.end)):
        once.apply_once(
            f"flat.end:{w.id}", lambda w=w: _end(FlatWindow.get_by_id(w.id), now), due_at=w.end
        )
    _close_orphans(now)


def pending_times(now: dt.datetime | None = None, limit: int = 200) -> list[dt.datetime]:
    """Future instants (naive UTC) at which :func:`apply_due` has something to do."""
    now = _naive(now) if now is not None else clock.utcnow()
    times: set[dt.datetime] = set()
    for w in FlatWindow.select().where(FlatWindow.state.in_(("scheduled", "active"))):
        times.update(t for t in (w.start, w.end) if t > now)
    for org_id in {g.org_id for g, _ in _running_free()}:
        end = free_tier_end(models.Org.get_by_id(org_id))
        if end > now:
            times.add(end)
    return sorted(times)[:limit]


def _running_free() -> list[tuple[models.Group, str]]:
    org_ids = _orgs_running()
    return [(g, e) for o in org_ids for g, e in _held(o) if e == "free"]


# --- reading -------------------------------------------------------------------------


def summary(org_id: int) -> contract.Entitlements:
    org = models.Org.get_by_id(org_id)
    now = clock.utcnow()
    in_use: dict[str, int] = defaultdict(int)
    for g, held in _held(org_id):
        in_use[held] += g.count
    entitlements = set(in_use) | {org.default_entitlement}
    usage = {}
    for ent in sorted(entitlements):
        try:
            cap, why = available(org, ent, now)
        except ApplianceError as e:
            cap, why = 0, e.message
        usage[ent] = contract.InUse(capacity=cap, running=in_use.get(ent, 0), note=why or None)
    windows = FlatWindow.select().where(FlatWindow.org == org_id).order_by(FlatWindow.start)
    free_end = free_tier_end(org)
    return contract.Entitlements(
        currency=org.currency,
        timezone=org.timezone,
        default=org.default_entitlement,
        free_tier=contract.FreeTier(
            capacity=catalog.FREE_CAPACITY,
            until=_iso(free_end, org.timezone),
            active=now < free_end,
        ),
        flat=[window_of(w, org.timezone) for w in windows],
        in_use=usage,
    )


@dataclass(frozen=True)
class BillingInputs:
    """The entitlement facts billing rates for a span, as billing's own types."""

    on_demand: list[UsageInterval]
    """Every interval of an On-Demand tier that overlaps the span, unclipped (billing
    takes the union per tier and clips it); one still open ends at min(now, span end)."""
    flat: list[FlatPurchase]
    """Every flat window that started in the span."""


def intervals_doc(inputs: BillingInputs) -> contract.Intervals:
    """The facts as GET /api/v1/entitlements/intervals answers them (ISO 8601, offsets)."""
    return contract.Intervals(
        on_demand=[
            contract.OnDemandInterval(tier=u.tier, start=u.start.isoformat(), end=u.end.isoformat())
            for u in inputs.on_demand
        ],
        flat=[contract.FlatStart(plan=f.plan, start=f.start.isoformat()) for f in inputs.flat],
    )


def billing_inputs(
    org_id: int, period_start: dt.datetime, period_end: dt.datetime
) -> BillingInputs:
    """The entitlement facts billing rates for [period_start, period_end).

    Times are aware, in the org's billing time zone. Naive arguments are UTC.
    """
    if _naive(period_end) <= _naive(period_start):
        raise ApplianceError("period_end: must be after period_start")
    org = models.Org.get_by_id(org_id)
    return billing_inputs_many([(org, period_start, period_end)])[0]


Span = tuple[models.Org, dt.datetime, dt.datetime]


def billing_inputs_many(spans: list[Span]) -> list[BillingInputs]:
    """:func:`billing_inputs` of several (org, start, end) at once, in one query.

    The month close rates its orgs in batches; one query per org would be most of
    its time.
    """
    if not spans:
        return []
    bounds = [(org, _naive(ps), _naive(pe)) for org, ps, pe in spans]
    lo = min(ps for _, ps, _ in bounds)
    hi = max(pe for _, _, pe in bounds)
    ei = EntitlementInterval
    by_org: dict[int, list[Any]] = defaultdict(list)
    for r in (
        ei.select(ei.org, ei.kind, ei.item, ei.start, ei.end)
        .where(
            ei.org.in_(sorted({org.id for org, _, _ in bounds})),
            ei.start < hi,
            ((ei.kind == "on_demand") & (ei.end.is_null() | (ei.end > lo)))
            | ((ei.kind == "flat") & ei.window_id.is_null(False) & (ei.start >= lo)),
        )
        .order_by(ei.start, ei.id)
        .namedtuples()  # thousands of rows per month-close batch: no model instances
    ):
        by_org[r.org].append(r)
    now = clock.utcnow()
    out = []
    for org, ps, pe in bounds:
        on_demand, flat = [], []
        for r in by_org[org.id]:
            if r.kind == "on_demand":
                if r.start < pe and (r.end is None or r.end > ps):
                    end = r.end if r.end is not None else max(r.start, min(now, pe))
                    on_demand.append(
                        UsageInterval(
                            tier=r.item,
                            start=_local(r.start, org.timezone),
                            end=_local(end, org.timezone),
                        )
                    )
            elif ps <= r.start < pe:
                flat.append(FlatPurchase(plan=r.item, start=_local(r.start, org.timezone)))
        out.append(BillingInputs(on_demand=on_demand, flat=flat))
    return out
