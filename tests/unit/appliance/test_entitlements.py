"""Entitlements: capacity checks, intervals for billing, flat windows exactly once."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from appliance import models
from appliance.audit.models import AuditEntry
from appliance.entitlements import catalog, jobs
from appliance.entitlements import service as ent
from appliance.entitlements.models import EntitlementInterval, FlatWindow
from appliance.errors import ApplianceError, Conflict
from appliance.schedule import clock, once
from tests.unit.appliance.factories import T0, group, online_agent, registered, start, stop

H = dt.timedelta(hours=1)
ACTOR = "user:test"


def intervals(org_id: int, start: dt.datetime, end: dt.datetime) -> dict:
    """What billing rates for [start, end), as GET /api/v1/entitlements/intervals says it."""
    return msgspec.to_builtins(ent.intervals_doc(ent.billing_inputs(org_id, start, end)))


@pytest.fixture(autouse=True)
def frozen_clock():
    clock.freeze(T0)
    yield
    clock.reset()


@pytest.fixture
def acme(org: models.Org) -> models.Org:
    online_agent(org)
    org.timezone = "Asia/Tokyo"
    org.save()
    return registered(org, T0 - dt.timedelta(days=30))


def test_catalog_has_both_currencies_in_the_billing_shape() -> None:
    for currency in ("JPY", "USD"):
        c = catalog.for_currency(currency)
        assert set(c) == {"on_demand", "flat", "free_tier"}
        assert c["on_demand"]["cn10"]["capacity"] == 10
        assert all(isinstance(t["hourly"], int) for t in c["on_demand"].values())
        assert all(isinstance(p["price"], int) for p in c["flat"].values())
        assert c["free_tier"] == {"capacity": catalog.FREE_CAPACITY, "days": 365}
    assert catalog.for_currency("JPY")["on_demand"]["cn10"]["hourly"] == 120
    with pytest.raises(ApplianceError, match="currency"):
        catalog.for_currency("EUR")
    assert catalog.ON_DEMAND_TIERS["cn10000"] >= 10_000  # the demo org's default (DESIGN §7)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("on_demand:cn7", "unknown On-Demand tier"),
        ("flat:nope", "unknown flat plan"),
        ("gold", "is not on_demand"),
    ],
)
def test_unknown_entitlements_are_named(name: str, message: str) -> None:
    with pytest.raises(ApplianceError, match=message):
        catalog.parse(name)


def test_on_demand_tier_capacity_is_enforced_with_a_clear_409(acme: models.Org) -> None:
    group(acme, "a", 6, "on_demand:cn10")
    group(acme, "b", 5, "on_demand:cn10")
    group(acme, "c", 4, "on_demand:cn10")
    start(acme, "a")
    with pytest.raises(Conflict) as e:
        start(acme, "b")
    assert "5 mocks do not fit entitlement on_demand:cn10 (capacity 10, 6 already running" in str(
        e.value.message
    )
    start(acme, "c")  # 6 + 4 fits exactly
    assert models.Group.get(models.Group.name == "b").state == "stopped"


def test_on_demand_intervals_open_and_close_with_runs(acme: models.Org) -> None:
    group(acme, "a", 5, "on_demand:cn10")
    start(acme, "a")
    clock.freeze(T0 + 2 * H)
    stop(acme, "a")
    clock.freeze(T0 + 3 * H)
    start(acme, "a")  # a second run, still open
    rows = list(EntitlementInterval.select().order_by(EntitlementInterval.id))
    assert [(r.kind, r.item, r.run_id) for r in rows] == [
        ("on_demand", "cn10", 1),
        ("on_demand", "cn10", 2),
    ]
    assert rows[0].end - rows[0].start == 2 * H and rows[1].end is None

    clock.freeze(T0 + 5 * H)
    inputs = intervals(acme.id, T0 - 24 * H, T0 + 30 * 24 * H)
    assert inputs == {
        "on_demand": [
            {
                "tier": "cn10",
                "start": "2026-10-01T09:00:00+09:00",
                "end": "2026-10-01T11:00:00+09:00",
            },
            # still running: it ends "now" for a period that has not ended
            {
                "tier": "cn10",
                "start": "2026-10-01T12:00:00+09:00",
                "end": "2026-10-01T14:00:00+09:00",
            },
        ],
        "flat": [],
    }
    # A period that ended while the run went on: the open interval ends at the period end.
    inputs = intervals(acme.id, T0 - 24 * H, T0 + 4 * H)
    assert inputs["on_demand"][1]["end"] == "2026-10-01T13:00:00+09:00"
    # Nothing of another period.
    assert intervals(acme.id, T0 + 10 * H, T0 + 11 * H)["on_demand"] == [
        {"tier": "cn10", "start": "2026-10-01T12:00:00+09:00", "end": "2026-10-01T14:00:00+09:00"}
    ]
    assert intervals(acme.id, T0 - 48 * H, T0 - 24 * H) == {"on_demand": [], "flat": []}


def test_the_default_entitlement_is_what_the_org_picked(acme: models.Org) -> None:
    group(acme, "a", 15)  # no entitlement of its own
    ent.set_on_demand(acme.id, "cn10", actor=ACTOR)
    with pytest.raises(Conflict, match="on_demand:cn10"):
        start(acme, "a")
    ent.set_on_demand(acme.id, "cn20", actor=ACTOR)
    start(acme, "a")
    assert EntitlementInterval.get().item == "cn20"
    with pytest.raises(ApplianceError, match="tier: unknown"):
        ent.set_on_demand(acme.id, "cn3", actor=ACTOR)
    # Changing the default later does not re-label what already runs.
    ent.set_on_demand(acme.id, "cn10", actor=ACTOR)
    assert ent.summary(acme.id).in_use["on_demand:cn20"].running == 15


def test_free_tier_admits_f_mocks_for_365_days(acme: models.Org) -> None:
    group(acme, "small", catalog.FREE_CAPACITY, "free")
    group(acme, "big", catalog.FREE_CAPACITY + 1, "free")
    with pytest.raises(Conflict, match="do not fit entitlement free"):
        start(acme, "big")
    start(acme, "small")
    assert EntitlementInterval.get().kind == "free"
    # The free tier ends 365 days after registration: running free groups are stopped.
    end = acme.registered_at + dt.timedelta(days=365)
    assert clock.aware(end) in [clock.aware(t) for t in ent.pending_times()]
    clock.freeze(end)
    # The entitlement side only reports; the job has the groups service stop it.
    ent.apply_due()
    over = ent.over_capacity()
    assert [(o.group, o.entitlement, o.count) for o in over] == [
        ("small", "free", catalog.FREE_CAPACITY)
    ]
    assert "free tier ended" in over[0].reason
    assert models.Group.get(models.Group.name == "small").state == "running"
    jobs.apply_due()
    assert models.Group.get(models.Group.name == "small").state == "stopped"
    assert ent.over_capacity() == []
    with pytest.raises(Conflict, match="the free tier ended on"):
        start(acme, "small")
    stopped = AuditEntry.get(AuditEntry.action == "group.stop")
    assert stopped.actor == "scheduler" and "free tier ended" in stopped.after


def test_flat_window_starts_and_ends_exactly_once(acme: models.Org) -> None:
    begin = T0 + 24 * H
    w = ent.buy_flat(acme.id, "flat10-30d", begin, actor=ACTOR)
    assert w.state == "scheduled" and w.price == 30_000 and w.currency == "JPY"
    assert w.start == "2026-10-02T09:00:00+09:00"
    assert w.end == "2026-11-01T09:00:00+09:00"
    group(acme, "f", 10, "flat:flat10-30d")
    with pytest.raises(Conflict, match="no active window of flat plan 'flat10-30d' \\(the next"):
        start(acme, "f")

    clock.freeze(begin)
    jobs.apply_due()
    jobs.apply_due()  # a second tick at the same edge changes nothing
    assert FlatWindow.get_by_id(w.id).state == "active"
    assert EntitlementInterval.select().where(EntitlementInterval.kind == "flat").count() == 1
    start(acme, "f")
    group(acme, "g", 1, "flat:flat10-30d")
    with pytest.raises(Conflict, match="capacity 10, 10 already running"):
        start(acme, "g")

    clock.freeze(begin + dt.timedelta(days=30))
    jobs.apply_due()
    jobs.apply_due()
    assert FlatWindow.get_by_id(w.id).state == "ended"
    assert models.Group.get(models.Group.name == "f").state == "stopped"
    assert [e.action for e in AuditEntry.select().order_by(AuditEntry.id)] == [
        "flat.buy",
        "flat.start",
        "flat.end",
        "group.stop",
    ]
    # billing: the window counts in the month it started, with its start time
    assert intervals(acme.id, T0, T0 + 31 * 24 * H)["flat"] == [
        {"plan": "flat10-30d", "start": "2026-10-02T09:00:00+09:00"}
    ]
    assert intervals(acme.id, T0 + 31 * 24 * H, T0 + 61 * 24 * H)["flat"] == []


def test_edges_missed_while_down_are_caught_up_once_even_run_twice(acme: models.Org) -> None:
    w = ent.buy_flat(acme.id, "flat100-30d", T0 + H, actor=ACTOR)
    # The appliance was down from before the start until after the end.
    clock.freeze(T0 + dt.timedelta(days=40))
    assert jobs.apply_due() == set()
    assert jobs.apply_due() == set()  # a second catch-up (a restart, another replica)
    assert FlatWindow.get_by_id(w.id).state == "ended"
    actions = [e.action for e in AuditEntry.select().where(AuditEntry.action.startswith("flat."))]
    assert actions == ["flat.buy", "flat.start", "flat.end"]
    assert once.done(f"flat.start:{w.id}") and once.done(f"flat.end:{w.id}")
    interval = EntitlementInterval.get(EntitlementInterval.kind == "flat")
    # Billing sees the window where it was scheduled, not when the appliance woke up.
    assert clock.aware(interval.start) == T0 + H
    late = AuditEntry.get(AuditEntry.action == "flat.start").after
    assert '"late_s":' in late


def test_a_marker_makes_a_racing_second_attempt_a_no_op(acme: models.Org) -> None:
    calls = []
    assert once.apply_once("test:1", lambda: calls.append(1) or "done") == "done"
    assert once.apply_once("test:1", lambda: calls.append(2) or "again") is None
    assert calls == [1]


def test_buying_names_the_bad_field(acme: models.Org) -> None:
    with pytest.raises(ApplianceError, match="plan: unknown flat plan"):
        ent.buy_flat(acme.id, "flat-gold", None, actor=ACTOR)
    with pytest.raises(ApplianceError, match=r"start: .* is in the past"):
        ent.buy_flat(acme.id, "flat10-30d", T0 - 24 * H, actor=ACTOR)


def test_a_window_can_be_cancelled_only_before_it_starts(acme: models.Org) -> None:
    later = ent.buy_flat(acme.id, "flat10-30d", T0 + 24 * H, actor=ACTOR)
    now = ent.buy_flat(acme.id, "flat10-30d", None, actor=ACTOR)
    jobs.apply_due()
    assert ent.cancel_flat(acme.id, later.id, actor=ACTOR).state == "cancelled"
    with pytest.raises(Conflict, match="already started"):
        ent.cancel_flat(acme.id, now.id, actor=ACTOR)
    clock.freeze(T0 + 48 * H)
    jobs.apply_due()
    assert FlatWindow.get_by_id(later.id).state == "cancelled"  # never activates


def test_scaling_checks_capacity_too(acme: models.Org) -> None:
    from appliance.groups import service as groups

    group(acme, "a", 5, "on_demand:cn10")
    start(acme, "a")
    with pytest.raises(Conflict, match="12 mocks do not fit entitlement on_demand:cn10"):
        groups.scale_group(acme.id, "a", 12, 60)
    groups.scale_group(acme.id, "a", 10, 60)


def test_an_interval_left_open_by_a_vanished_group_is_closed(acme: models.Org) -> None:
    g = group(acme, "a", 5, "on_demand:cn10")
    start(acme, "a")
    clock.freeze(T0 + H)
    models.Group.delete().where(models.Group.id == g.id).execute()
    jobs.apply_due()
    row = EntitlementInterval.get()
    assert clock.aware(row.end) == T0 + H
