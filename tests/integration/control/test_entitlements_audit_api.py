"""Entitlements, the audit log, /metrics and the live feed, through the real app."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest
from litestar.exceptions import WebSocketDisconnect

from agent import wire
from appliance import models
from appliance.audit import service as audit
from appliance.audit.models import AuditEntry
from appliance.fleet import service as fleet
from appliance.schedule import clock
from tests.integration.control.conftest import Api
from tests.unit.appliance.factories import online_agent

TEMPLATE = {
    "transport": {"mqtt": {"url": "mqtt://127.0.0.1:1", "topic": "lab/{device_id}/t"}},
    "interval": "1s",
    "payload": {"device": {"device_id": {}}, "seq": {"counter": {}}},
}


def put_group(api: Api, name: str, count: int, entitlement: str | None = None) -> None:
    assert api.call("PUT", "/api/v1/templates/thermo", "operator", json=TEMPLATE).status_code in (
        200,
        201,
    )
    body = {"template": "thermo", "count": count, "entitlement": entitlement}
    r = api.call("PUT", f"/api/v1/groups/{name}", "operator", json=body)
    assert r.status_code in (200, 201), r.text


def test_over_capacity_is_a_409_naming_the_entitlement(api: Api) -> None:
    online_agent(api.org)
    r = api.call("PUT", "/api/v1/entitlements/on-demand", json={"tier": "cn10"})
    assert r.status_code == 200 and r.json()["default"] == "on_demand:cn10"
    put_group(api, "thermo-fleet", 20)
    r = api.call("POST", "/api/v1/groups/thermo-fleet/start", "operator")
    assert r.status_code == 409
    assert r.json()["detail"] == (
        "group 'thermo-fleet': 20 mocks do not fit entitlement on_demand:cn10 "
        "(capacity 10, 0 already running under it)"
    )
    r = api.call("PUT", "/api/v1/entitlements/on-demand", json={"tier": "cn3"})
    assert r.status_code == 400 and r.json()["detail"].startswith("tier: unknown On-Demand tier")


def test_the_demo_org_admits_ten_thousand_mocks(api: Api) -> None:
    summary = api.call("GET", "/api/v1/entitlements", "viewer").json()
    assert summary["default"] == "on_demand:cn10000"
    assert summary["in_use"]["on_demand:cn10000"]["capacity"] >= 10_000


def test_a_flat_plan_bought_now_admits_its_group_and_billing_sees_it(api: Api) -> None:
    online_agent(api.org)
    r = api.call("POST", "/api/v1/entitlements/flat", json={"plan": "flat10-30d"})
    assert r.status_code == 201, r.text
    window = r.json()
    assert window["state"] == "active" and window["price"] == 30_000
    put_group(api, "flat-fleet", 10, "flat:flat10-30d")
    r = api.call("POST", "/api/v1/groups/flat-fleet/start", "operator")
    assert r.status_code == 200, r.text
    put_group(api, "extra", 1, "flat:flat10-30d")
    r = api.call("POST", "/api/v1/groups/extra/start", "operator")
    assert r.status_code == 409 and "capacity 10, 10 already running" in r.json()["detail"]

    now = clock.now()
    r = api.call(
        "GET",
        "/api/v1/entitlements/intervals",
        "viewer",
        params={
            "start": (now - dt.timedelta(days=1)).isoformat(),
            "end": (now + dt.timedelta(days=1)).isoformat(),
        },
    )
    assert r.status_code == 200
    assert r.json()["flat"] == [{"plan": "flat10-30d", "start": window["start"]}]
    assert window["start"].endswith("+09:00")  # the demo org bills in Asia/Tokyo

    r = api.call("DELETE", f"/api/v1/entitlements/flat/{window['id']}")
    assert r.status_code == 409 and "already started" in r.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"plan": "flat-gold"}, "plan: unknown flat plan"),
        ({"plan": "flat10-30d", "start": "tomorrow"}, "start: 'tomorrow' is not an ISO 8601"),
        ({"plan": "flat10-30d", "start": "2030-01-01T00:00:00"}, "start: needs a UTC offset"),
        ({"plan": "flat10-30d", "start": "2001-01-01T00:00:00Z"}, "start: "),
    ],
)
def test_buying_a_flat_plan_rejects_bad_input(api: Api, body: dict, field: str) -> None:
    r = api.call("POST", "/api/v1/entitlements/flat", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["detail"].startswith(field)


def test_every_mutation_is_in_the_audit_log(api: Api) -> None:
    put_group(api, "g1", 3)
    api.call("PUT", "/api/v1/entitlements/on-demand", json={"tier": "cn20"})
    api.call("POST", "/api/v1/tokens", json={"name": "ci"})
    api.call("POST", "/api/v1/enrollment-tokens")
    # a refused call changes nothing and is not a mutation
    api.call("POST", "/api/v1/groups/nope/start", "operator")
    entries = api.call("GET", "/api/v1/audit").json()["entries"]
    actions = [e["action"] for e in entries]
    assert actions[:5] == [
        "api.create_enrollment_token",
        "token.create",
        "entitlement.default",
        "api.put_group",
        "api.put_template",
    ]
    by_action = {e["action"]: e for e in entries}
    assert by_action["api.put_group"]["actor"] == "user:a-operator"
    assert by_action["api.put_group"]["target"] == "PUT /api/v1/groups/g1"
    assert by_action["entitlement.default"]["before"] == {
        "default_entitlement": "on_demand:cn10000"
    }
    assert by_action["entitlement.default"]["after"] == {"default_entitlement": "on_demand:cn20"}
    # Secrets in answers are redacted in the log.
    enrollment = by_action["api.create_enrollment_token"]["after"]["response"]
    assert enrollment["token"] == "[redacted]" and "mme_" not in enrollment["command"]
    assert "mm_" not in str(by_action["token.create"])
    # Filters and paging
    page = api.call("GET", "/api/v1/audit", params={"action": "api.", "limit": 2}).json()
    assert [e["action"] for e in page["entries"]] == [
        "api.create_enrollment_token",
        "api.put_group",
    ]
    rest = api.call(
        "GET", "/api/v1/audit", params={"action": "api.", "before_id": page["next_before_id"]}
    ).json()
    assert [e["action"] for e in rest["entries"]] == ["api.put_template"]
    assert api.call("GET", "/api/v1/audit", params={"limit": 0}).status_code == 400
    assert api.call("GET", "/api/v1/audit", params={"since": "yesterday"}).status_code == 400
    assert audit.verify().ok
    verdict = api.call("GET", "/api/v1/audit/verify").json()
    assert verdict["ok"] and verdict["rows"] >= 5 and verdict["broken_id"] is None
    # Tampering is named by the API the same way `mockmock audit verify` names it.
    victim = by_action["api.put_group"]["id"]
    AuditEntry.update(actor="user:someone-else").where(AuditEntry.id == victim).execute()
    verdict = api.call("GET", "/api/v1/audit/verify").json()
    assert (verdict["ok"], verdict["broken_id"]) == (False, victim)
    assert "modified" in verdict["reason"]


def report(agent_id: str, group: models.Group, sent: int, errors: int) -> None:
    hist = wire.Histogram()
    for us in (800, 900, 1_000, 5_000):
        hist.add(us)
    fleet.on_reported(
        agent_id,
        wire.Reported(
            revision=1,
            groups=[
                wire.GroupReport(
                    group_id=group.id,
                    run_id=group.run_id,
                    running=group.count,
                    sent=sent,
                    errors=errors,
                    lateness=hist,
                )
            ],
        ),
    )


def test_metrics_are_prometheus_text(api: Api) -> None:
    agent = online_agent(api.org)
    put_group(api, "m1", 4)
    assert api.call("POST", "/api/v1/groups/m1/start", "operator").status_code == 200
    report(agent, models.Group.get(models.Group.name == "m1"), sent=1234, errors=5)
    r = api.call("GET", "/metrics", "viewer")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.text
    for line in (
        'mockmock_agents_online{org="demo"} 1',
        'mockmock_groups_running{org="demo"} 1',
        'mockmock_mocks_running{org="demo",group="m1"} 4',
        'mockmock_sent_total{org="demo",group="m1"} 1234',
        'mockmock_errors_total{org="demo",group="m1"} 5',
        'mockmock_usage_device_seconds_total{org="demo",group="m1"} 0',
        "# TYPE mockmock_sent_total counter",
    ):
        assert line in text.splitlines(), line
    assert re.search(
        r'^mockmock_send_lateness_ms\{org="demo",group="m1",quantile="0.99"\} 5(\.\d+)?$',
        text,
        re.M,
    )
    assert re.search(r"^mockmock_bus_connected [01]$", text, re.M)
    assert api.client.get("/metrics").status_code == 401


def test_the_live_feed_pushes_a_snapshot_every_second(api: Api) -> None:
    agent = online_agent(api.org)
    put_group(api, "live", 3)
    api.call("POST", "/api/v1/groups/live/start", "operator")
    group = models.Group.get(models.Group.name == "live")
    report(agent, group, sent=100, errors=0)
    with api.client.websocket_connect(f"/api/v1/live?token={api.tokens['viewer']}") as ws:
        first = ws.receive_json(timeout=5)
        report(agent, group, sent=400, errors=1)
        t0 = time.monotonic()
        second = ws.receive_json(timeout=5)
        assert 0.5 < time.monotonic() - t0 < 2.5
    assert first["totals"]["agents_online"] == 1
    assert {a["agent_id"]: a["online"] for a in first["agents"]}[agent] is True
    g = next(g for g in second["groups"] if g["name"] == "live")
    assert g["state"] == "running" and g["sent"] == 400 and g["errors"] == 1
    assert g["sent_per_s"] > 0
    assert g["lateness_ms"]["p99"] >= 4.5


def test_the_live_feed_takes_the_token_as_a_first_message_and_refuses_strangers(
    api: Api,
) -> None:
    with api.client.websocket_connect("/api/v1/live") as ws:
        ws.send_json({"token": api.tokens["viewer"]})
        assert "totals" in ws.receive_json(timeout=5)
    with api.client.websocket_connect("/api/v1/live?token=mm_wrong") as ws:
        assert "unknown or revoked token" in ws.receive_json(timeout=5)["error"]
        with pytest.raises(WebSocketDisconnect) as e:
            ws.receive_json(timeout=5)
        assert e.value.code == 4401
