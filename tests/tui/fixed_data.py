"""Fixed figures for snapshot tests: every screen fed directly, no appliance, no clock."""

from __future__ import annotations

AGENTS = [
    {
        "agent_id": f"a{i:04d}cafe",
        "hostname": f"pi-lab-{i}",
        "arch": "aarch64" if i % 2 else "armv7l",
        "version": "0.1.0",
        "online": i != 3,
        "capacity": 1000,
        "assigned": 100 * i,
        "cpu_percent": 10.0 + i,
        "rss_mb": 40.5 + i,
    }
    for i in range(1, 6)
]
RATES = {a["agent_id"]: 10.0 * i for i, a in enumerate(AGENTS, start=1)}

GROUPS = [
    {
        "name": name,
        "template": "thermo",
        "state": state,
        "count": count,
        "run_id": 1,
        "running": count if state == "running" else 0,
        "sent": 1000 * count,
        "errors": errors,
        "sent_per_s": float(count),
        "lateness_ms": {"p50": 0.8, "p99": 5.3, "max": 9.0},
        "placement": [
            {"agent_id": "a0001cafe", "index_start": 0, "index_end": count // 2},
            {"agent_id": "a0002cafe", "index_start": count // 2, "index_end": count},
        ],
    }
    for name, state, count, errors in (
        ("thermo-fleet", "running", 50, 0),
        ("door-sensors", "running", 200, 7),
        ("soak", "stopped", 10, 0),
    )
]

TEMPLATES = [
    {
        "name": "thermo",
        "version": 3,
        "updated_at": "2026-11-01T09:00:00Z",
        "spec": {
            "transport": {"mqtt": {"url": "mqtt://10.0.0.5:1883", "topic": "lab/{device_id}"}},
            "interval": "1s",
            "payload": {"seq": {"counter": {}}, "temp": {"uniform": {"min": 18, "max": 26}}},
        },
    }
]


def snapshots(n: int = 40) -> list[dict]:
    """``n`` live-feed snapshots with a wave in the rates."""
    out = []
    for t in range(n):
        out.append(
            {
                "agents": AGENTS,
                "groups": [
                    {
                        **g,
                        "sent_per_s": g["sent_per_s"] * (1 + (t % 10) / 10),
                        "errors": g["errors"] + t // 8,
                        "lateness_ms": {"p50": 0.8, "p99": 3 + (t % 7)},
                    }
                    for g in GROUPS
                ],
                "totals": {
                    "agents_online": 4,
                    "groups_running": 2,
                    "mocks_running": 250,
                    "sent_per_s": 250.0,
                    "errors": 7,
                },
            }
        )
    return out


ENTITLEMENTS = {
    "currency": "JPY",
    "timezone": "Asia/Tokyo",
    "default": "on_demand:cn100",
    "free_tier": {"capacity": 5, "until": "2027-04-01T00:00:00+09:00", "active": True},
    "flat": [],
    "in_use": {"on_demand:cn100": {"capacity": 100, "running": 60}},
}
USAGE = {"device_seconds": 720000, "groups": {"thermo-fleet": 360000.0, "door-sensors": 360000.0}}
CATALOG = {
    "currency": "JPY",
    "on_demand": {"cn100": {"capacity": 100, "hourly": 700}},
    "flat": {},
}
HOURS = {"on_demand:cn100": 100.5}
QUOTE = {
    "currency": "JPY",
    "period": "2026-11",
    "lines": [{"kind": "on_demand", "item": "cn100", "quantity_minutes": 6030, "amount": 90450}],
    "subtotal": 90450,
    "discounts": [{"code": "THANKS500", "amount": 500}],
    "tax": 8995,
    "total": 98945,
    "status": "chargeable",
}

INVOICES = [
    {
        "id": 2,
        "number": "MM-0002-202610-0",
        "org": "acme",
        "org_id": 2,
        "period": "2026-10",
        "status": "draft",
        "total": 396,
        "currency": "JPY",
        "mode": "test",
        "attempts": 0,
        "last_error": None,
    },
    {
        "id": 1,
        "number": "MM-0002-202609-0",
        "org": "acme",
        "org_id": 2,
        "period": "2026-09",
        "status": "failed",
        "total": 1200,
        "currency": "JPY",
        "mode": "test",
        "attempts": 2,
        "last_error": "card_declined: insufficient_funds",
    },
]
ACCOUNT = {
    "org": "acme",
    "org_id": 2,
    "currency": "JPY",
    "mode": "test",
    "card": "visa •••• 4242",
    "credit_balance": 500,
    "carried_balance": 0,
    "coupons": [{"code": "THANKS", "redeemed_at": "2026-10-02", "uses": 1}],
}
INVOICE_DOC = {
    **INVOICES[0],
    "covered_from": "2026-10-01T00:00:00+09:00",
    "covered_to": "2026-11-01T00:00:00+09:00",
    "next_retry_at": None,
    "payment_intent": None,
    "adjustments": [],
    "invoice": {
        "lines": [
            {
                "kind": "on_demand",
                "item": "cn10",
                "quantity_minutes": 180,
                "amount": 360,
                "hourly": 120,
            }
        ],
        "subtotal": 360,
        "discounts": [{"code": "THANKS", "amount": 0, "applies_to": "all"}],
        "not_applied": [],
        "credit_applied": 0,
        "net": 360,
        "tax": 36,
        "tax_rate": 0.1,
        "previous_balance": 0,
        "total": 396,
        "carried_forward": 0,
    },
}


def _chained(entries: list[dict]) -> list[dict]:
    """Give the entries real chain hashes, oldest first, so the page verifies."""
    from tui.audit_chain import entry_hash

    prev = "0" * 64
    for e in sorted(entries, key=lambda e: e["id"]):
        e["hash"] = prev = entry_hash(prev, e)
    return entries


AUDIT = _chained(
    [
        {
            "id": i,
            "at": f"2026-11-25T13:{i:02d}:00+00:00",
            "actor": "admin" if i % 2 else "scheduler",
            "org_id": 1,
            "action": ("group.start", "invoice.approve", "agent.online")[i % 3],
            "target": f"group:{i}",
            "before": None,
            "after": {"n": i},
            "hash": "0" * 64,
        }
        for i in range(12, 0, -1)
    ]
)
