"""Properties every invoice keeps, over generated scenarios (valid and broken)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing import BillingInputError, decode_invoice, decode_scenario, encode_invoice, rate
from billing.money import round_half_up
from tests.unit.billing.factories import raw

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TIERS = ("cn10", "cn20", "cn100")
PLANS = ("flat10-30d", "flat100-7d")
ZONES = ("Asia/Tokyo", "UTC", "America/New_York", "Europe/London", "Australia/Lord_Howe")


def instant(anchor: datetime, seconds: int, offset_hours: int) -> str:
    """``anchor + seconds``, written with one of the UTC offsets people use."""
    zone = timezone(timedelta(hours=offset_hours))
    return (anchor + timedelta(seconds=seconds)).astimezone(zone).isoformat()


@st.composite
def scenarios(draw: st.DrawFn, currency: str | None = None) -> dict[str, Any]:
    cur = currency or draw(st.sampled_from(("JPY", "USD")))
    month = draw(st.integers(1, 12))
    anchor = datetime(2026, month, 1, tzinfo=UTC)
    offsets = st.sampled_from((0, 9, -5, 1, 10))
    # From two days before the month to a few days after it: clipping gets exercised.
    moments = st.integers(-2 * 86400, 34 * 86400)
    tiers = draw(st.lists(st.sampled_from(TIERS), min_size=1, max_size=3, unique=True))
    plans = draw(st.lists(st.sampled_from(PLANS), min_size=1, max_size=2, unique=True))
    catalog = {
        "on_demand": {t: {"capacity": 10, "hourly": draw(st.integers(0, 100_000))} for t in tiers},
        "flat": {
            p: {"capacity": 10, "days": 30, "price": draw(st.integers(0, 10_000_000))}
            for p in plans
        },
    }
    on_demand = []
    for _ in range(draw(st.integers(0, 6))):
        start = draw(moments)
        end = start + draw(st.integers(0, 3 * 86400))
        on_demand.append(
            {
                "tier": draw(st.sampled_from(tiers)),
                "start": instant(anchor, start, draw(offsets)),
                "end": instant(anchor, end, draw(offsets)),
            }
        )
    flat = [
        {"plan": draw(st.sampled_from(plans)), "start": instant(anchor, draw(moments), 9)}
        for _ in range(draw(st.integers(0, 3)))
    ]
    coupons = []
    for i in range(draw(st.integers(0, 4))):
        coupon: dict[str, Any] = {
            "code": f"C{i}",
            "applies_to": draw(st.sampled_from(("all", "on_demand", "flat"))),
            "duration": draw(st.sampled_from(("once", "repeating", "forever"))),
            "redeemed_at": instant(anchor, draw(st.integers(-400 * 86400, 40 * 86400)), 9),
        }
        if draw(st.booleans()):
            coupon["percent_off"] = draw(st.decimals(Decimal("0.01"), Decimal(100), places=2))
        else:
            coupon["amount_off"] = draw(st.integers(1, 1_000_000))
            coupon["currency"] = draw(st.sampled_from((cur, cur, "JPY", "USD")))
        if coupon["duration"] == "repeating":
            coupon["months"] = draw(st.integers(1, 14))
        coupons.append(coupon)
    return {
        "currency": cur,
        "period": f"2026-{month:02d}",
        "timezone": draw(st.sampled_from(ZONES)),
        "tax_rate": draw(st.decimals(Decimal(0), Decimal(30), places=3)),
        "catalog": catalog,
        "on_demand": on_demand,
        "flat": flat,
        "coupons": coupons,
        "coupons_used": {c["code"]: draw(st.integers(0, 2)) for c in coupons},
        "credit_balance": draw(st.integers(0, 1_000_000)),
        "carried_forward": draw(st.integers(0, 49)),
    }


def quoted(doc: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(encode_invoice(rate(decode_scenario(raw(doc)))))
    return result


@FAST
@given(scenarios())
def test_amounts_are_never_negative_and_add_up(doc: dict[str, Any]) -> None:
    inv = quoted(doc)
    discounts = sum(d["amount"] for d in inv["discounts"])
    assert inv["total"] >= 0
    assert inv["subtotal"] == sum(line["amount"] for line in inv["lines"])
    assert inv["net"] == inv["subtotal"] - discounts - inv["credit_applied"] >= 0
    assert inv["total"] == inv["net"] + inv["tax"] + inv["previous_balance"]
    assert inv["credit_applied"] + inv["credit_remaining"] == doc["credit_balance"]
    expected_status = (
        "nothing_due"
        if inv["total"] == 0
        else "below_minimum"
        if inv["total"] < 50
        else "chargeable"
    )
    assert inv["status"] == expected_status
    assert inv["carried_forward"] == (inv["total"] if expected_status == "below_minimum" else 0)


@FAST
@given(scenarios())
def test_discounts_never_exceed_the_subtotal_nor_what_they_apply_to(doc: dict[str, Any]) -> None:
    inv = quoted(doc)
    assert sum(d["amount"] for d in inv["discounts"]) <= inv["subtotal"]
    by_kind = {
        "all": inv["subtotal"],
        "on_demand": sum(ln["amount"] for ln in inv["lines"] if ln["kind"] == "on_demand"),
        "flat": sum(ln["amount"] for ln in inv["lines"] if ln["kind"] == "flat"),
    }
    for discount in inv["discounts"]:
        assert 0 < discount["amount"] <= by_kind[discount["applies_to"]]
    # Every coupon is accounted for exactly once: applied or not, never both.
    codes = [d["code"] for d in inv["discounts"]] + [n["code"] for n in inv["not_applied"]]
    assert sorted(codes) == sorted(c["code"] for c in doc["coupons"])


@FAST
@given(scenarios())
def test_no_line_is_ever_zero_and_each_follows_the_catalog(doc: dict[str, Any]) -> None:
    inv = quoted(doc)
    for line in inv["lines"]:
        assert line["amount"] > 0
        if line["kind"] == "on_demand":
            hourly = doc["catalog"]["on_demand"][line["item"]]["hourly"]
            # Exactly minutes * hourly / 60 rounded half up: no * 100 for any currency.
            assert line["amount"] == round_half_up(Fraction(line["quantity_minutes"] * hourly, 60))
        else:
            assert line["amount"] == doc["catalog"]["flat"][line["item"]]["price"]


@FAST
@given(scenarios(currency="JPY"))
def test_jpy_and_usd_rate_the_same_minor_units(doc: dict[str, Any]) -> None:
    # JPY is zero-decimal: its integers are yen, never cents. Rating the same
    # integers as USD (coupons kept matching or not matching) gives the same figures.
    usd = json.loads(json.dumps(doc, default=str))
    usd["currency"] = "USD"
    for coupon in usd["coupons"]:
        if "currency" in coupon:
            coupon["currency"] = "USD" if coupon["currency"] == "JPY" else "JPY"
    yen, cents = quoted(doc), quoted(usd)
    same = ("lines", "subtotal", "discounts", "credit_applied", "net", "tax", "total")
    assert {k: yen[k] for k in same} == {k: cents[k] for k in same}


@FAST
@given(scenarios())
def test_tax_is_floored_once_on_the_net(doc: dict[str, Any]) -> None:
    inv = quoted(doc)
    exact = Fraction(inv["net"]) * Fraction(Decimal(str(doc["tax_rate"]))) / 100
    assert inv["tax"] <= exact < inv["tax"] + 1


@FAST
@given(scenarios(), st.randoms(use_true_random=False))
def test_same_input_same_output_whatever_the_usage_order(
    doc: dict[str, Any], rng: random.Random
) -> None:
    invoice = rate(decode_scenario(raw(doc)))
    first = encode_invoice(invoice)
    assert encode_invoice(rate(decode_scenario(raw(doc)))) == first
    # A stored draft reads back as it was. Compared as bytes: an instant in a DST
    # fall-back hour (fold) never equals the same instant with a fixed offset (PEP 495),
    # though both name the same moment.
    assert encode_invoice(decode_invoice(first)) == first
    shuffled = dict(doc, on_demand=rng.sample(doc["on_demand"], len(doc["on_demand"])))
    assert encode_invoice(rate(decode_scenario(raw(shuffled)))) == first


@FAST
@given(scenarios(), st.data())
def test_splitting_a_run_into_overlapping_pieces_changes_nothing(
    doc: dict[str, Any], data: st.DataObject
) -> None:
    if not doc["on_demand"]:
        return
    i = data.draw(st.integers(0, len(doc["on_demand"]) - 1))
    run = doc["on_demand"][i]
    start, end = datetime.fromisoformat(run["start"]), datetime.fromisoformat(run["end"])
    cut = start + timedelta(
        seconds=data.draw(st.integers(0, (end - start) // timedelta(seconds=1)))
    )
    overlap = timedelta(seconds=data.draw(st.integers(0, 600)))
    pieces = [
        {**run, "end": min(end, cut + overlap).isoformat()},
        {**run, "start": cut.isoformat()},
    ]
    split = dict(doc, on_demand=doc["on_demand"][:i] + pieces + doc["on_demand"][i + 1 :])
    assert quoted(split)["lines"] == quoted(doc)["lines"]


# --- broken input: only BillingInputError, with a path and a message ----------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document a value sits."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += paths(value, (*prefix, index))
    return found


def set_at(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path[:-1]:
        doc = doc[step]
    doc[path[-1]] = value


def delete_at(doc: Any, path: tuple[Any, ...]) -> None:
    for step in path[:-1]:
        doc = doc[step]
    del doc[path[-1]]


def outcome(text: bytes) -> str:
    """ "ok" or the error; anything but BillingInputError fails the test."""
    try:
        rate(decode_scenario(text))
    except BillingInputError as exc:
        assert exc.message
        assert str(exc) == (f"{exc.path}: {exc.message}" if exc.path else exc.message)
        return str(exc)
    return "ok"


@FAST
@given(scenarios(), st.data())
def test_any_mutation_is_rated_or_refused_cleanly(doc: dict[str, Any], data: st.DataObject) -> None:
    doc = json.loads(raw(doc))
    where = data.draw(st.sampled_from(paths(doc)))
    how = data.draw(st.sampled_from(("replace", "delete", "add")))
    if how == "replace":
        set_at(doc, where, data.draw(JSON_VALUES))
    elif how == "delete":
        delete_at(doc, where)
    else:
        parent = doc
        for step in where[:-1]:
            parent = parent[step]
        if isinstance(parent, dict):
            parent[data.draw(st.text(min_size=1, max_size=8))] = data.draw(JSON_VALUES)
    outcome(json.dumps(doc).encode())


@FAST
@given(scenarios(), st.data())
def test_broken_bytes_are_refused_cleanly(doc: dict[str, Any], data: st.DataObject) -> None:
    text = raw(doc)
    at = data.draw(st.integers(0, len(text)))
    junk = data.draw(st.binary(max_size=4))
    mangled = text[:at] + junk + text[at + data.draw(st.integers(0, 3)) :]
    outcome(mangled)


@FAST
@given(scenarios(), st.data())
def test_a_negative_amount_anywhere_is_refused_at_its_path(
    doc: dict[str, Any], data: st.DataObject
) -> None:
    tier = data.draw(st.sampled_from(sorted(doc["catalog"]["on_demand"])))
    plan = data.draw(st.sampled_from(sorted(doc["catalog"]["flat"])))
    where, shown = data.draw(
        st.sampled_from(
            [
                (("catalog", "on_demand", tier, "hourly"), f"catalog.on_demand.{tier}.hourly"),
                (("catalog", "flat", plan, "price"), f"catalog.flat.{plan}.price"),
                (("credit_balance",), "credit_balance"),
                (("carried_forward",), "carried_forward"),
            ]
        )
    )
    doc = json.loads(raw(doc))
    value = -data.draw(st.integers(1, 10**9))
    set_at(doc, where, value)
    assert outcome(json.dumps(doc).encode()) == f"{shown}: must be >= 0, got {value}"
