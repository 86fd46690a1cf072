"""Golden invoices, one per rule of DESIGN.md §4.1, each worked out by hand.

Every expected invoice is written in full (the contract's keys) with the
arithmetic beside it, so a change in any rule shows up as a readable diff.
"""

from __future__ import annotations

from tests.unit.billing.factories import (
    amount,
    buy,
    contract,
    jst,
    percent,
    quote,
    scenario,
    use,
)


def invoice(**fields: object) -> dict[str, object]:
    """An expected JPY 2026-10 invoice: all zero unless said otherwise."""
    base: dict[str, object] = {
        "currency": "JPY",
        "period": "2026-10",
        "lines": [],
        "subtotal": 0,
        "discounts": [],
        "not_applied": [],
        "credit_applied": 0,
        "credit_remaining": 0,
        "net": 0,
        "tax": 0,
        "previous_balance": 0,
        "total": 0,
        "status": "nothing_due",
        "carried_forward": 0,
    }
    return {**base, **fields}


def od(item: str, minutes: int, amount: int) -> dict[str, object]:
    return {"kind": "on_demand", "item": item, "quantity_minutes": minutes, "amount": amount}


def flat(item: str, amount: int) -> dict[str, object]:
    return {"kind": "flat", "item": item, "amount": amount}


def test_contract_example_is_quoted_exactly() -> None:
    doc = scenario(
        on_demand=[use("cn10", jst(3, 10), jst(3, 12, 30))],
        flat=[buy("flat10-30d", jst(20))],
        coupons=[
            percent("WELCOME10", 10, jst(1), duration="once"),
            amount("THANKS500", 500, jst(1, month=9)),
        ],
        coupons_used={"WELCOME10": 0},
    )
    # 150 min * 120/60 = 300; + 30000 = 30300; 10 % = 3030; then 500 → 26770;
    # tax floor(2677.0) = 2677; total 29447 (the output printed in DESIGN.md).
    assert quote(doc) == {
        "currency": "JPY",
        "period": "2026-10",
        "lines": [
            {
                "kind": "on_demand",
                "item": "cn10",
                "quantity_minutes": 150,
                "amount": 300,
                "hourly": 120,
            },
            {
                "kind": "flat",
                "item": "flat10-30d",
                "amount": 30000,
                "start": "2026-10-20T00:00:00+09:00",
            },
        ],
        "subtotal": 30300,
        "discounts": [
            {"code": "WELCOME10", "amount": 3030, "applies_to": "all"},
            {"code": "THANKS500", "amount": 500, "applies_to": "all"},
        ],
        "not_applied": [],
        "credit_applied": 0,
        "credit_remaining": 0,
        "net": 26770,
        "tax": 2677,
        "previous_balance": 0,
        "total": 29447,
        "status": "chargeable",
        "carried_forward": 0,
        "timezone": "Asia/Tokyo",
        "period_start": "2026-10-01T00:00:00+09:00",
        "period_end": "2026-11-01T00:00:00+09:00",
        "tax_rate": 10,
        "minimum_charge": 50,
    }


def test_rule1_period_is_the_calendar_month_in_the_billing_time_zone() -> None:
    usage = [
        # 2026-09-30 23:00 → 10-01 01:00 JST: only 00:00-01:00 is October in Tokyo.
        use("cn10", "2026-09-30T14:00:00Z", "2026-09-30T16:00:00Z"),
        # 2026-10-31 23:30 → 11-01 00:30 JST: only 23:30-24:00 is October in Tokyo.
        use("cn10", jst(31, 23, 30), "2026-11-01T00:30:00+09:00"),
    ]
    # Tokyo: 60 + 30 = 90 min; 90 * 120/60 = 180; tax floor(18.0) = 18; total 198.
    assert contract(quote(scenario(on_demand=usage))) == invoice(
        lines=[od("cn10", 90, 180)],
        subtotal=180,
        net=180,
        tax=18,
        total=198,
        status="chargeable",
    )
    # UTC: the first stretch is all September; the second (14:30Z-15:30Z on 10-31)
    # all October: 60 min * 120/60 = 120; tax 12; total 132.
    assert contract(quote(scenario(on_demand=usage, timezone="UTC"))) == invoice(
        lines=[od("cn10", 60, 120)],
        subtotal=120,
        net=120,
        tax=12,
        total=132,
        status="chargeable",
    )


def test_rule1_a_month_with_a_dst_change_has_its_real_length() -> None:
    doc = scenario(
        currency="USD",
        timezone="America/New_York",
        period="2026-03",
        tax_rate=0,
        # Running from mid-February to mid-April covers all of March.
        on_demand=[use("cn10", "2026-02-15T00:00:00Z", "2026-04-15T00:00:00Z")],
    )
    # March 2026 in New York loses an hour on the 8th: 31 * 24 - 1 = 743 h
    # = 44580 min; 44580 * 120/60 = 89160 cents.
    assert contract(quote(doc)) == invoice(
        currency="USD",
        period="2026-03",
        lines=[od("cn10", 44580, 89160)],
        subtotal=89160,
        net=89160,
        total=89160,
        status="chargeable",
    )


def test_rule2_on_demand_is_the_union_rounded_up_to_minutes_then_half_up() -> None:
    doc = scenario(
        catalog={
            "on_demand": {
                "cn10": {"capacity": 10, "hourly": 120},
                "cn20": {"capacity": 20, "hourly": 150},
            }
        },
        on_demand=[
            use("cn10", jst(3, 10), jst(3, 11)),
            use("cn10", jst(3, 10, 30), jst(3, 11, 30)),  # overlaps: counted once
            use("cn10", jst(3, 13), jst(3, 13, 0, 30)),
            use("cn10", jst(3, 14), jst(3, 14, 0, 30)),
            use("cn20", jst(3, 10), jst(3, 10, 1)),  # other tier: never merged with cn10
        ],
    )
    # cn10: union 10:00-11:30 = 5400 s, + 30 s + 30 s = 5460 s → ceil(91.0) = 91 min
    #       (not 90 + 1 + 1 = 92: the total is rounded, not each run); 91 * 120/60 = 182.
    # cn20: 1 min * 150/60 = 2.5 → half up → 3 (banker's rounding would give 2).
    # subtotal 185; tax floor(18.5) = 18; total 203.
    assert contract(quote(doc)) == invoice(
        lines=[od("cn10", 91, 182), od("cn20", 1, 3)],
        subtotal=185,
        net=185,
        tax=18,
        total=203,
        status="chargeable",
    )


def test_rule2_any_started_second_rounds_up_to_a_minute() -> None:
    doc = scenario(on_demand=[use("cn10", jst(3, 10), jst(3, 10, 2, 1))])
    # 121 s → ceil(121 / 60) = 3 min; 3 * 120/60 = 6; tax floor(0.6) = 0; 6 < 50.
    assert contract(quote(doc)) == invoice(
        lines=[od("cn10", 3, 6)],
        subtotal=6,
        net=6,
        total=6,
        status="below_minimum",
        carried_forward=6,
    )


def test_rule3_a_flat_plan_costs_its_price_in_the_period_its_window_starts() -> None:
    doc = scenario(
        flat=[
            buy("flat10-30d", jst(25, month=9)),  # started in September: still running, free now
            buy("flat10-30d", jst(1)),  # exactly at the period's start: counts
            buy("flat10-30d", jst(31, 23, 59, 59)),  # last second of October: counts
            buy("flat10-30d", "2026-11-01T00:00:00+09:00"),  # the period's end: November's
        ]
    )
    # 2 * 30000 = 60000; tax 6000; total 66000.
    assert contract(quote(doc)) == invoice(
        lines=[flat("flat10-30d", 30000), flat("flat10-30d", 30000)],
        subtotal=60000,
        net=60000,
        tax=6000,
        total=66000,
        status="chargeable",
    )


def test_rule4_free_tier_and_zero_amounts_never_make_a_line() -> None:
    catalog = {
        "on_demand": {
            "cn10": {"capacity": 10, "hourly": 120},
            "trial": {"capacity": 5, "hourly": 0},
            "cheap": {"capacity": 1, "hourly": 1},
        },
        "flat": {"promo": {"capacity": 10, "days": 7, "price": 0}},
        "free_tier": {"capacity": 1, "days": 365},
    }
    doc = scenario(
        catalog=catalog,
        registered_at=jst(1, month=3),  # within the free year: still no line
        on_demand=[
            use("trial", jst(2), jst(2, 2)),  # 120 min * 0/60 = 0 → no line
            use("cheap", jst(2), jst(2, 0, 20)),  # 20 min * 1/60 = 0.33 → 0 → no line
            use("cn10", jst(2), jst(2, 0, 0, 10)),  # 10 s → 1 min * 120/60 = 2
        ],
        flat=[buy("promo", jst(5))],  # price 0 → no line
    )
    # subtotal 2; tax floor(0.2) = 0; total 2 < 50 → carried forward.
    assert contract(quote(doc)) == invoice(
        lines=[od("cn10", 1, 2)],
        subtotal=2,
        net=2,
        total=2,
        status="below_minimum",
        carried_forward=2,
    )
    # A month on the free tier alone: nothing at all, not a 0 line.
    assert contract(quote(scenario(catalog=catalog))) == invoice()


def test_rule5_subtotal_is_the_sum_of_the_lines() -> None:
    doc = scenario(
        on_demand=[use("cn10", jst(4, 9), jst(4, 10)), use("cn20", jst(4, 9), jst(4, 9, 30))],
        flat=[buy("flat10-30d", jst(10))],
    )
    # cn10 60 min * 120/60 = 120; cn20 30 min * 200/60 = 100; flat 30000;
    # subtotal 30220; tax 3022; total 33242.
    assert contract(quote(doc)) == invoice(
        lines=[od("cn10", 60, 120), od("cn20", 30, 100), flat("flat10-30d", 30000)],
        subtotal=30220,
        net=30220,
        tax=3022,
        total=33242,
        status="chargeable",
    )


def test_rule6_coupons_are_skipped_for_each_listed_reason() -> None:
    doc = scenario(
        flat=[buy("flat10-30d", jst(2))],
        coupons=[
            # redeemed exactly at the period's end → skipped
            percent("LATE", 10, "2026-11-01T00:00:00+09:00"),
            # amount off in another currency → skipped
            amount("USD5", 500, jst(1), currency="USD"),
            # once, already used on an earlier invoice → skipped
            percent("ONCE", 10, jst(1, month=9), duration="once"),
            # 2 months from 08-31 23:30 JST = August and September → over in October
            percent("REP-AUG", 10, jst(31, 23, 30, month=8), duration="repeating", months=2),
            # 2 months from 08-31 15:30Z = 09-01 00:30 JST = September and October → applies
            percent("REP-SEP", 5, "2026-08-31T15:30:00Z", duration="repeating", months=2),
            amount("FOREVER", 1000, "2024-01-01T00:00:00+09:00"),  # forever never runs out
            # once, absent from coupons_used (= 0 uses) → applies
            amount("NEWONCE", 200, jst(5), duration="once"),
        ],
        coupons_used={"ONCE": 1},
    )
    # subtotal 30000; percent first: REP-SEP 5 % = 1500 → 28500; then amount off
    # by redemption: FOREVER (2024) 1000 → 27500, NEWONCE (10-05) 200 → 27300.
    # tax 2730; total 30030. not_applied keeps the coupons' listed order.
    assert contract(quote(doc)) == invoice(
        lines=[flat("flat10-30d", 30000)],
        subtotal=30000,
        discounts=[
            {"code": "REP-SEP", "amount": 1500},
            {"code": "FOREVER", "amount": 1000},
            {"code": "NEWONCE", "amount": 200},
        ],
        not_applied=[
            {"code": "LATE", "reason": "redeemed_after_period"},
            {"code": "USD5", "reason": "currency_mismatch"},
            {"code": "ONCE", "reason": "already_used"},
            {"code": "REP-AUG", "reason": "expired"},
        ],
        net=27300,
        tax=2730,
        total=30030,
        status="chargeable",
    )


def test_rule6_percent_first_then_amount_by_redemption_each_capped() -> None:
    doc = scenario(
        on_demand=[use("cn10", jst(6), jst(6, 10))],
        flat=[buy("flat10-30d", jst(7))],
        coupons=[
            amount("A", 2000, jst(10), applies_to="on_demand"),
            percent("B", 50, jst(20), applies_to="flat"),
            amount("C", 20000, jst(10)),  # same instant as A, listed after it
            percent("D", 10, jst(1)),
            amount("E", 100, jst(11)),
            amount("G", 50, jst(1), applies_to="on_demand"),  # listed last, redeemed first
        ],
    )
    # lines: cn10 600 min * 120/60 = 1200 (on_demand), flat 30000; subtotal 31200.
    # percent, in listed order:  B 50 % of flat 30000 = 15000          → 16200 left
    #                            D 10 % of all 31200 (before discounts) = 3120 → 13080
    # amount, by redeemed_at:    G min(50, 1200, 13080) = 50           → 13030
    #                            A min(2000, eligible 1200, 13030) = 1200 → 11830
    #                            C min(20000, 31200, left 11830) = 11830 → 0
    #                            E nothing left → not applied
    # net 0, tax 0, total 0.
    assert contract(quote(doc)) == invoice(
        lines=[od("cn10", 600, 1200), flat("flat10-30d", 30000)],
        subtotal=31200,
        discounts=[
            {"code": "B", "amount": 15000},
            {"code": "D", "amount": 3120},
            {"code": "G", "amount": 50},
            {"code": "A", "amount": 1200},
            {"code": "C", "amount": 11830},
        ],
        not_applied=[{"code": "E", "reason": "nothing_remaining"}],
    )


def test_rule6_a_coupon_that_would_take_nothing_is_not_applied() -> None:
    doc = scenario(
        on_demand=[use("cn10", jst(8), jst(8, 0, 15))],
        coupons=[
            percent("P15", 15, jst(1), applies_to="on_demand"),
            percent("P1", 1, jst(1)),
            percent("FLATONLY", 50, jst(1), applies_to="flat"),
        ],
    )
    # cn10 15 min * 120/60 = 30. P15: 15 % of 30 = 4.5 → half up 5 → 25 left.
    # P1: 1 % of 30 = 0.3 → 0: not listed as a 0 discount. FLATONLY: no flat line.
    # net 25; tax floor(2.5) = 2; total 27 < 50 → carried forward.
    assert contract(quote(doc)) == invoice(
        lines=[od("cn10", 15, 30)],
        subtotal=30,
        discounts=[{"code": "P15", "amount": 5}],
        not_applied=[
            {"code": "P1", "reason": "rounds_to_zero"},
            {"code": "FLATONLY", "reason": "nothing_eligible"},
        ],
        net=25,
        tax=2,
        total=27,
        status="below_minimum",
        carried_forward=27,
    )


def test_rule7_credit_balance_covers_what_coupons_leave() -> None:
    base = {"flat": [buy("flat10-30d", jst(2))], "coupons": [amount("THANKS", 500, jst(1))]}
    # 30000 - 500 = 29500; credit 40000 covers it all, 10500 left for later; net 0.
    assert contract(quote(scenario(**base, credit_balance=40000))) == invoice(
        lines=[flat("flat10-30d", 30000)],
        subtotal=30000,
        discounts=[{"code": "THANKS", "amount": 500}],
        credit_applied=29500,
        credit_remaining=10500,
    )
    # credit 1000: 29500 - 1000 = 28500; tax 2850; total 31350.
    assert contract(quote(scenario(**base, credit_balance=1000))) == invoice(
        lines=[flat("flat10-30d", 30000)],
        subtotal=30000,
        discounts=[{"code": "THANKS", "amount": 500}],
        credit_applied=1000,
        net=28500,
        tax=2850,
        total=31350,
        status="chargeable",
    )


def test_rule8_tax_is_floored_once_on_the_net_with_decimal_rates() -> None:
    doc = scenario(
        currency="USD",
        timezone="America/New_York",
        tax_rate=8.875,
        catalog={"flat": {"kit": {"capacity": 5, "days": 30, "price": 1001}}},
        flat=[buy("kit", "2026-10-05T09:00:00-04:00"), buy("kit", "2026-10-06T09:00:00-04:00")],
    )
    # net 2 * 1001 = 2002 cents; 2002 * 8.875 / 100 = 177.6775 → floor 177.
    # (Per line it would be floor(88.83875) * 2 = 176: the tax is rounded once.)
    assert contract(quote(doc)) == invoice(
        currency="USD",
        lines=[flat("kit", 1001), flat("kit", 1001)],
        subtotal=2002,
        net=2002,
        tax=177,
        total=2179,
        status="chargeable",
    )


def test_rule9_previous_balance_is_added_untaxed_and_undiscounted() -> None:
    usage = [use("cn10", jst(9), jst(9, 0, 10))]  # 10 min * 120/60 = 20
    # 20 + tax floor(2.0) = 2 + previous 30 = 52 ≥ 50 → chargeable, nothing carried.
    assert contract(quote(scenario(on_demand=usage, carried_forward=30))) == invoice(
        lines=[od("cn10", 10, 20)],
        subtotal=20,
        net=20,
        tax=2,
        previous_balance=30,
        total=52,
        status="chargeable",
    )
    # A 100 % coupon and credit only reach the 20: the 30 is neither discounted
    # nor taxed (tax on net 0 = 0); total 30 < 50 → carried forward again.
    free = scenario(
        on_demand=usage,
        carried_forward=30,
        coupons=[percent("ALL", 100, jst(1))],
        credit_balance=500,
    )
    assert contract(quote(free)) == invoice(
        lines=[od("cn10", 10, 20)],
        subtotal=20,
        discounts=[{"code": "ALL", "amount": 20}],
        credit_remaining=500,
        previous_balance=30,
        total=30,
        status="below_minimum",
        carried_forward=30,
    )


def test_rule9_minimum_charge_is_50_minor_units_in_each_currency() -> None:
    def usd(price: int) -> dict[str, object]:
        catalog = {"flat": {"p": {"capacity": 1, "days": 1, "price": price}}}
        doc = scenario(currency="USD", tax_rate=0, catalog=catalog, flat=[buy("p", jst(3))])
        return contract(quote(doc))

    # 49 cents < 50 → not charged, carried; 50 cents → charged.
    assert (usd(49)["status"], usd(49)["carried_forward"]) == ("below_minimum", 49)
    assert (usd(50)["status"], usd(50)["carried_forward"]) == ("chargeable", 0)
    # JPY: 45 yen + tax floor(4.5) = 4 → 49 < 50; 46 yen + 4 = 50 → charged.
    for price, status in ((45, "below_minimum"), (46, "chargeable")):
        catalog = {"flat": {"p": {"capacity": 1, "days": 1, "price": price}}}
        got = quote(scenario(catalog=catalog, flat=[buy("p", jst(3))]))
        assert (got["total"], got["status"]) == (price + 4, status)


def test_rule10_lines_by_tier_name_then_flat_by_start() -> None:
    catalog = {
        "on_demand": {f"cn{n}": {"capacity": n, "hourly": 60} for n in (10, 20, 100)},
        "flat": {
            "A": {"capacity": 10, "days": 30, "price": 1000},
            "B": {"capacity": 10, "days": 30, "price": 2000},
        },
    }
    doc = scenario(
        catalog=catalog,
        tax_rate=0,
        on_demand=[
            use("cn20", jst(2), jst(2, 0, 2)),
            use("cn100", jst(2), jst(2, 0, 3)),
            use("cn10", jst(2), jst(2, 0, 1)),
        ],
        flat=[buy("B", jst(20)), buy("A", jst(5)), buy("A", jst(20))],
    )
    # Tier names in code-point order: "cn10" < "cn100" < "cn20" (60/h = 1 per minute).
    # Flat by start; the two at 10-20 00:00 tie and fall back to plan name.
    # subtotal 1 + 3 + 2 + 1000 + 1000 + 2000 = 4006.
    assert contract(quote(doc)) == invoice(
        lines=[
            od("cn10", 1, 1),
            od("cn100", 3, 3),
            od("cn20", 2, 2),
            flat("A", 1000),
            flat("A", 1000),
            flat("B", 2000),
        ],
        subtotal=4006,
        net=4006,
        total=4006,
        status="chargeable",
    )
