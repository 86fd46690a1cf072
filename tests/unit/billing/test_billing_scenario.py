"""Bad scenarios are refused with the field's path and the problem, in one line."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from billing import BillingInputError, decode_scenario, rate
from billing.scenario import Catalog, OnDemandTier, Scenario, UsageInterval
from tests.unit.billing.factories import amount, buy, jst, percent, raw, scenario, use


def error_of(doc: dict[str, Any] | bytes) -> str:
    with pytest.raises(BillingInputError) as caught:
        decode_scenario(doc if isinstance(doc, bytes) else raw(doc))
    return str(caught.value)


def with_catalog(**changes: Any) -> dict[str, Any]:
    doc = scenario()
    doc["catalog"].update(changes)
    return doc


BAD: list[tuple[str, dict[str, Any], str]] = [
    (
        "unknown tier",
        scenario(on_demand=[use("cn30", jst(1), jst(2))]),
        "on_demand[0].tier: unknown On-Demand tier 'cn30' (catalog has: cn10, cn20)",
    ),
    (
        "end before start",
        scenario(on_demand=[use("cn10", jst(1), jst(2)), use("cn10", jst(3), jst(2))]),
        "on_demand[1].end: must not be before start (2026-10-03T00:00:00+09:00)",
    ),
    (
        "mixed currencies",
        with_catalog(currency="USD"),
        "catalog.currency: USD prices cannot bill a JPY invoice (never converted)",
    ),
    (
        "missing field",
        {k: v for k, v in scenario().items() if k != "tax_rate"},
        "tax_rate: is required",
    ),
    (
        "missing nested field",
        with_catalog(flat={"f": {"capacity": 1, "days": 1}}),
        "catalog.flat.f.price: is required",
    ),
    (
        "unknown field (a typo)",
        scenario(credit_balanse=100),
        "credit_balanse: is not a known field",
    ),
    (
        "negative price, in a mapping",
        with_catalog(on_demand={"cn10": {"capacity": 10, "hourly": -5}}),
        "catalog.on_demand.cn10.hourly: must be >= 0, got -5",
    ),
    (
        "wrong type, in a mapping",
        with_catalog(on_demand={"cn10": {"capacity": 10, "hourly": "120"}}),
        "catalog.on_demand.cn10.hourly: must be an integer, got a string",
    ),
    (
        "fractional minor units",
        with_catalog(flat={"f": {"capacity": 1, "days": 1, "price": 99.5}}),
        "catalog.flat.f.price: must be an integer (amounts are whole minor units: yen, cents)",
    ),
    (
        "unsupported currency",
        scenario(currency="EUR"),
        "currency: must be one of JPY, USD, got 'EUR'",
    ),
    (
        "bad period",
        scenario(period="2026-13"),
        "period: must be a month written YYYY-MM, e.g. 2026-10, got '2026-13'",
    ),
    (
        "unknown zone",
        scenario(timezone="Asia/Tokio"),
        "timezone: unknown IANA time zone 'Asia/Tokio' (e.g. Asia/Tokyo, UTC)",
    ),
    (
        "host zone",
        scenario(timezone="localtime"),
        "timezone: must be an IANA time zone name such as Asia/Tokyo, not localtime",
    ),
    ("tax over 100", scenario(tax_rate=101), "tax_rate: must be between 0 and 100, got 101"),
    ("tax not finite", scenario(tax_rate="NaN"), "tax_rate: must be a finite number"),
    (
        "tax too precise",
        scenario(tax_rate="8.1234567"),
        "tax_rate: must have at most 6 decimal places",
    ),
    (
        "naive date-time",
        scenario(flat=[buy("flat10-30d", "2026-10-20T00:00:00")]),
        "flat[0].start: must include a UTC offset, e.g. 2026-10-01T00:00:00+09:00 or ...Z",
    ),
    (
        "not a date-time",
        scenario(flat=[buy("flat10-30d", "20 Oct 2026")]),
        "flat[0].start: must be an RFC 3339 date-time with a UTC offset, "
        "e.g. 2026-10-01T00:00:00+09:00",
    ),
    (
        "unknown plan",
        scenario(flat=[buy("gold", jst(2))]),
        "flat[0].plan: unknown flat plan 'gold' (catalog has: flat10-30d)",
    ),
    (
        "both kinds of coupon",
        scenario(coupons=[percent("X", 10, jst(1), amount_off=5)]),
        "coupons[0]: needs exactly one of percent_off or amount_off",
    ),
    (
        "amount off without currency",
        scenario(coupons=[{**amount("X", 5, jst(1)), "currency": None}]),
        "coupons[0].currency: is required with amount_off",
    ),
    (
        "percent off with a currency",
        scenario(coupons=[percent("X", 10, jst(1), currency="JPY")]),
        "coupons[0].currency: only an amount_off coupon has a currency",
    ),
    (
        "percent over 100",
        scenario(coupons=[percent("X", 150, jst(1))]),
        "coupons[0].percent_off: must be more than 0 and at most 100, got 150",
    ),
    (
        "repeating without months",
        scenario(coupons=[percent("X", 10, jst(1), duration="repeating")]),
        "coupons[0].months: is required for a repeating coupon",
    ),
    (
        "months on a forever coupon",
        scenario(coupons=[percent("X", 10, jst(1), months=3)]),
        "coupons[0].months: only a repeating coupon has months (this one is forever)",
    ),
    (
        "unknown applies_to",
        scenario(coupons=[percent("X", 10, jst(1), applies_to="everything")]),
        "coupons[0].applies_to: must be one of all, on_demand, flat, got 'everything'",
    ),
    (
        "duplicate code",
        scenario(coupons=[percent("X", 10, jst(1)), amount("X", 5, jst(1))]),
        "coupons[1].code: 'X' is already coupons[0]",
    ),
    (
        "negative use count, odd key",
        scenario(coupons_used={"SPRING 26": -1}),
        'coupons_used["SPRING 26"]: must be >= 0, got -1',
    ),
    ("negative credit", scenario(credit_balance=-1), "credit_balance: must be >= 0, got -1"),
    (
        "boolean amount",
        scenario(carried_forward=True),
        "carried_forward: must be an integer, got true or false",
    ),
]


@pytest.mark.parametrize(("doc", "message"), [case[1:] for case in BAD], ids=[c[0] for c in BAD])
def test_bad_scenario_names_the_field(doc: dict[str, Any], message: str) -> None:
    assert error_of(doc) == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"", "empty document; expected a JSON object"),
        (b"[1, 2]", "the document must be an object, got an array"),
        (
            b'{"currency": "JPY",\n  "period": }',
            "invalid JSON at line 2, column 13: invalid character",
        ),
        (b'{"currency": "JPY"', "invalid JSON: the document ends too early"),
    ],
)
def test_broken_json_is_one_clear_message(text: bytes, message: str) -> None:
    assert error_of(text) == message


def test_duplicate_keys_are_refused_at_any_depth() -> None:
    # A JSON parser would silently keep the last one: 8 % tax instead of 10 %.
    top = raw(scenario()).replace(b'"tax_rate":10', b'"tax_rate":10,"tax_rate":8')
    assert error_of(top) == "tax_rate: appears twice in one object"
    nested = raw(scenario()).replace(b'"hourly":120', b'"hourly":120,"hourly":1')
    assert error_of(nested) == "catalog.on_demand.cn10.hourly: appears twice in one object"


def test_a_byte_order_mark_and_decimal_strings_are_accepted() -> None:
    text = b"\xef\xbb\xbf" + raw(scenario(tax_rate="8.875"))
    assert decode_scenario(text).tax_rate == Decimal("8.875")


def test_optional_parts_may_be_left_out() -> None:
    minimal = {
        "currency": "USD",
        "period": "2026-02",
        "timezone": "UTC",
        "tax_rate": 0,
        "catalog": {},
    }
    got = rate(decode_scenario(raw(minimal)))
    assert (got.lines, got.total, got.status) == ([], 0, "nothing_due")


def test_scenarios_built_in_python_get_the_same_checks() -> None:
    # The appliance's month close builds scenarios directly, not from JSON.
    built = Scenario(
        currency="JPY",
        period="2026-10",
        timezone="Asia/Tokyo",
        tax_rate=Decimal(10),
        catalog=Catalog(on_demand={"cn10": OnDemandTier(capacity=10, hourly=120)}),
        on_demand=[
            UsageInterval(
                tier="cn10",
                start=datetime(2026, 10, 2, tzinfo=UTC),
                end=datetime(2026, 10, 1, tzinfo=UTC),
            )
        ],
    )
    with pytest.raises(BillingInputError) as caught:
        rate(built)
    assert caught.value.path == "on_demand[0].end"
