"""Fixed figures for snapshot tests: every screen fed directly, no appliance, no clock.

The live feed, the drill-down (devices, tail, agent ranges), the template check and
every REST document the screens show (agents, groups, templates, usage, entitlements,
catalog, quote, invoices, account, coupons, the audit log's entries) are built from the
shared response types (``appliance.contract``), so a field the appliance renames
breaks these fixtures too.
"""

from __future__ import annotations

import msgspec

from appliance.contract.audit import AuditLogEntry
from appliance.contract.billing import (
    Account,
    Coupon,
    Discount,
    InvoiceDoc,
    InvoiceSummary,
    OnDemandLine,
    Quote,
    RatedInvoice,
    RedeemedCoupon,
)
from appliance.contract.entitlements import (
    Catalog,
    Entitlements,
    FreeTier,
    FreeTierTerms,
    InUse,
    Tier,
)
from appliance.contract.fleet import Agent
from appliance.contract.groups import Group, LatenessMax, Placed, Template
from appliance.contract.inspect import (
    AgentRange,
    AgentRanges,
    DeviceRow,
    GroupDevices,
    GroupTail,
    TailLine,
)
from appliance.contract.live import (
    Lateness,
    LiveAgent,
    LiveGroup,
    LiveSnapshot,
    LiveTotals,
)
from appliance.contract.usage import Usage

AGENTS = [
    Agent(
        agent_id=f"a{i:04d}cafe",
        hostname=f"pi-lab-{i}",
        arch="aarch64" if i % 2 else "armv7l",
        version="0.1.0",
        online=i != 3,
        capacity=1000,
        assigned=100 * i,
        cpu_percent=10.0 + i,
        rss_mb=40.5 + i,
    )
    for i in range(1, 6)
]
RATES = {a.agent_id: 10.0 * i for i, a in enumerate(AGENTS, start=1)}

GROUPS = [
    Group(
        name=name,
        template="thermo",
        state=state,
        count=count,
        run_id=1,
        running=count if state == "running" else 0,
        sent=1000 * count,
        errors=errors,
        lateness_ms=LatenessMax(p50=0.8, p99=5.3, max=9.0),
        placement=[
            Placed(agent_id="a0001cafe", index_start=0, index_end=count // 2),
            Placed(agent_id="a0002cafe", index_start=count // 2, index_end=count),
        ],
    )
    for name, state, count, errors in (
        ("thermo-fleet", "running", 50, 0),
        ("door-sensors", "running", 200, 7),
        ("soak", "stopped", 10, 0),
    )
]
GROUP_RATES = {g.name: float(g.count) if g.state == "running" else 0.0 for g in GROUPS}
"""Sent/s per group: the live feed's figure (the REST documents have none)."""

TEMPLATES = [
    Template(
        name="thermo",
        version=3,
        updated_at="2026-11-01T09:00:00Z",
        spec={
            "transport": {"mqtt": {"url": "mqtt://10.0.0.5:1883", "topic": "lab/{device_id}"}},
            "interval": "1s",
            "payload": {"seq": {"counter": {}}, "temp": {"uniform": {"min": 18, "max": 26}}},
        },
    )
]


def snapshots(n: int = 40) -> list[LiveSnapshot]:
    """``n`` live-feed snapshots with a wave in the rates."""
    return [
        LiveSnapshot(
            at=f"2026-11-25T13:00:{t:02d}+00:00",
            bus_connected=True,
            rate_window_s=10.0,
            agents=[
                LiveAgent(
                    agent_id=a.agent_id,
                    org="acme",
                    hostname=a.hostname,
                    online=a.online,
                    capacity=a.capacity,
                    assigned=a.assigned,
                    cpu_percent=a.cpu_percent,
                    rss_mb=a.rss_mb,
                )
                for a in AGENTS
            ],
            groups=[
                LiveGroup(
                    org="acme",
                    name=g.name,
                    state=g.state,
                    count=g.count,
                    run_id=g.run_id,
                    running=g.running,
                    sent=g.sent,
                    errors=g.errors + t // 8,
                    sent_per_s=GROUP_RATES[g.name] * (1 + (t % 10) / 10)
                    if g.state == "running"
                    else 0.0,
                    lateness_ms=Lateness(p50=0.8, p99=3 + (t % 7)),
                )
                for g in GROUPS
            ],
            totals=LiveTotals(
                agents_online=4,
                groups_running=2,
                mocks_running=250,
                sent=260000,
                sent_per_s=250.0,
                errors=7,
            ),
        )
        for t in range(n)
    ]


# Wide figures: the numbers that used to be cut ("100/1", "1002").
WIDE_GROUPS = [
    Group(
        name=f"line-{i}-pressure-sensors",
        template="pressure-v2-with-a-long-name",
        state="running",
        count=10000,
        run_id=4,
        running=10000,
        sent=1234567890 + i,
        errors=10023,
        lateness_ms=LatenessMax(p50=12.3, p99=1234.5, max=9999.0),
        placement=[
            Placed(agent_id=f"a{j:012x}", index_start=j * 2500, index_end=(j + 1) * 2500)
            for j in range(4)
        ],
    )
    for i in range(3)
]
WIDE_RATES = {g.name: 49876.5 for g in WIDE_GROUPS}

DETAIL = msgspec.structs.replace(
    GROUPS[0],
    seed=7,
    entitlement="on_demand:cn100",
    device_seconds=1800.0,
    placement=[
        Placed(agent_id="a0001cafe", agent_online=True, index_start=0, index_end=25),
        Placed(agent_id="a0002cafe", agent_online=True, index_start=25, index_end=50),
    ],
)
DEVICES = GroupDevices(
    group="thermo-fleet",
    state="running",
    run_id=1,
    count=50,
    start=0,
    devices=[
        DeviceRow(
            index=i,
            device_id=f"thermo-fleet-{i:05d}",
            agent_id="a0001cafe" if i < 25 else "a0002cafe",
            status="degraded" if i == 3 else "normal",
            connected=i != 5,
            sending=i not in (5, 3),
            last_at=f"2026-11-25T13:00:{i:02d}.250+00:00",
            last_payload=f'{{"seq": {100 + i}, "temp": {20 + i / 10:.1f}, "fw": "1.4.2"}}',
        )
        for i in range(12)
    ],
    watching_since="2026-11-25T12:59:30.000+00:00",
    last_errors=["ConnectionRefusedError: [Errno 111] Connection refused"],
)
TAIL = GroupTail(
    group="thermo-fleet",
    state="running",
    run_id=1,
    watching_since="2026-11-25T12:59:30.000+00:00",
    messages=[
        TailLine(
            agent_id="a0001cafe",
            n=i + 1,
            at=f"2026-11-25T13:00:{i // 3:02d}.{(i % 3) * 300:03d}+00:00",
            device_id=f"thermo-fleet-{i % 3:05d}",
            topic=f"lab/thermo-fleet-{i % 3:05d}/telemetry",
            status="normal",
            payload=f'{{"seq": {i}, "temp": {18 + i / 4:.2f}, "state": "ok"}}',
        )
        for i in range(30)
    ],
)
RANGES = AgentRanges(
    agent_id="a0001cafe",
    online=True,
    ranges=[
        AgentRange(
            group=g.name,
            run_id=1,
            index_start=0,
            index_end=g.count // 2,
            lease_until="2026-11-25T13:02:00+00:00",
            state="running" if g.state == "running" else "stopped",
            running=g.running // 2,
            sent=g.sent // 2,
            errors=g.errors,
            last_error="timeout" if g.errors else "",
        )
        for g in GROUPS
    ],
    errors=["group soak: lease expired, mocks 0-4 stopped (no renewal from the appliance)"],
)


ENTITLEMENTS = Entitlements(
    currency="JPY",
    timezone="Asia/Tokyo",
    default="on_demand:cn100",
    free_tier=FreeTier(capacity=5, until="2027-04-01T00:00:00+09:00", active=True),
    flat=[],
    in_use={"on_demand:cn100": InUse(capacity=100, running=60)},
)
USAGE = Usage(device_seconds=720000.0, groups={"thermo-fleet": 360000.0, "door-sensors": 360000.0})
CATALOG = Catalog(
    currency="JPY",
    on_demand={"cn100": Tier(capacity=100, hourly=700)},
    flat={},
    free_tier=FreeTierTerms(capacity=5, days=365),
)
HOURS = {"on_demand:cn100": 100.5}


def _rated(period: str, next_month: str, lines: list[OnDemandLine], **figures: int) -> dict:
    """A JPY, Asia/Tokyo, 10 % tax invoice's fields as billing rates them; ``figures``
    (subtotal, net, tax, total, credit_applied) say what it adds up to."""
    return {
        "currency": "JPY",
        "period": period,
        "lines": lines,
        "not_applied": [],
        "credit_applied": 0,
        "credit_remaining": 0,
        "previous_balance": 0,
        "status": "chargeable",
        "carried_forward": 0,
        "timezone": "Asia/Tokyo",
        "period_start": f"{period}-01T00:00:00+09:00",
        "period_end": f"{next_month}-01T00:00:00+09:00",
        "tax_rate": 10,
        "minimum_charge": 50,
        **figures,
    }


QUOTE = Quote(
    **_rated(
        "2026-11",
        "2026-12",
        [OnDemandLine(item="cn100", quantity_minutes=6030, amount=90450, hourly=900)],
        subtotal=90450,
        credit_applied=500,
        net=89450,
        tax=8945,
        total=98395,
    ),
    discounts=[Discount(code="THANKS500", amount=500, applies_to="all")],
    as_of="2026-11-25T22:00:00+09:00",
    covered_from="2026-11-01T00:00:00+09:00",
)


def _invoice(**fields: object) -> InvoiceSummary:
    """An invoice of acme's (JPY, test mode) as the list shows it; ``fields`` differ."""
    base: dict[str, object] = {
        "org": "acme",
        "org_id": 2,
        "part": 0,
        "early": False,
        "covered_from": None,
        "covered_to": None,
        "currency": "JPY",
        "mode": "test",
        "attempts": 0,
        "next_retry_at": None,
        "last_error": None,
        "action_url": None,
        "payment_intent": None,
        "refunded": 0,
        "created_at": None,
        "approved_at": None,
        "approved_by": None,
        "paid_at": None,
    }
    return InvoiceSummary(**{**base, **fields})  # type: ignore[arg-type]


INVOICES = [
    _invoice(id=2, number="MM-0002-202610-0", period="2026-10", status="draft", total=396),
    _invoice(
        id=1,
        number="MM-0002-202609-0",
        period="2026-09",
        status="failed",
        total=1200,
        attempts=2,
        last_error="card_declined: insufficient_funds",
    ),
]
ACCOUNT = Account(
    org="acme",
    org_id=2,
    currency="JPY",
    timezone="Asia/Tokyo",
    mode="test",
    appliance_mode="test",
    card="visa •••• 4242",
    customer="cus_acme",
    credit_balance=500,
    carried_balance=0,
    coupons=[RedeemedCoupon(code="THANKS", redeemed_at="2026-10-02", uses=1)],
)
INVOICE_DOC = InvoiceDoc(
    **{
        **msgspec.structs.asdict(INVOICES[0]),
        "covered_from": "2026-10-01T00:00:00+09:00",
        "covered_to": "2026-11-01T00:00:00+09:00",
    },
    adjustments=[],
    invoice=RatedInvoice(
        **_rated(
            "2026-10",
            "2026-11",
            [OnDemandLine(item="cn10", quantity_minutes=180, amount=360, hourly=120)],
            subtotal=360,
            net=360,
            tax=36,
            total=396,
        ),
        discounts=[Discount(code="THANKS", amount=0, applies_to="all")],
    ),
)


def _chained(entries: list[AuditLogEntry]) -> list[AuditLogEntry]:
    """Give the entries real chain hashes, oldest first, so the page verifies."""
    from tui.audit_chain import entry_hash

    prev = "0" * 64
    for e in sorted(entries, key=lambda e: e.id):
        e.hash = prev = entry_hash(prev, e)
    return entries


AUDIT = _chained(
    [
        AuditLogEntry(
            id=i,
            at=f"2026-11-25T13:{i:02d}:00+00:00",
            actor="admin" if i % 2 else "scheduler",
            org_id=1,
            action=("group.start", "invoice.approve", "agent.online")[i % 3],
            target=f"group:{i}",
            before=None,
            after={"n": i},
            hash="0" * 64,
        )
        for i in range(12, 0, -1)
    ]
)

COUPONS = [
    # As the appliance stores them today: a normalised Decimal ("1E+1" is 10).
    Coupon(
        code="WELCOME10",
        percent_off="1E+1",
        amount_off=None,
        currency=None,
        applies_to="all",
        duration="once",
        months=None,
    ),
    Coupon(
        code="THANKS",
        percent_off=None,
        amount_off=500,
        currency="JPY",
        applies_to="on_demand",
        duration="repeating",
        months=3,
    ),
    Coupon(
        code="HALF",
        percent_off="12.5",
        amount_off=None,
        currency=None,
        applies_to="flat",
        duration="forever",
        months=None,
    ),
]
