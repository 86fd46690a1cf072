"""Figures for alerting (deploy/prometheus/): per-agent presence and load, how stale
each busy agent's usage is, invoices by status, billing mail not delivered.

A few grouped queries, whatever the fleet's size; appended to ``/metrics``.
"""

from __future__ import annotations

import datetime as dt

import peewee as pw

from appliance import models
from appliance.invoices.models import Invoice
from appliance.notify.models import Notice
from appliance.observability.metrics import Sample, _family
from appliance.schedule import clock


def _scoped(query: pw.ModelSelect, field: pw.Field, org_id: int | None) -> pw.ModelSelect:
    return query if org_id is None else query.where(field == org_id)


def render(org_id: int | None) -> str:
    """Prometheus families for one org (or every org: ``None``)."""
    now = clock.utcnow()
    agents = list(
        _scoped(
            models.Agent.select(models.Agent, models.Org.name).join(models.Org),
            models.Agent.org,
            org_id,
        ).order_by(models.Agent.id)
    )
    assigned = dict(
        models.Assignment.select(
            models.Assignment.agent,
            pw.fn.SUM(models.Assignment.index_end - models.Assignment.index_start),
        )
        .join(models.Group)
        .where(models.Group.state == "running")
        .group_by(models.Assignment.agent)
        .tuples()
    )
    last_usage = _newest_usage([a.id for a in agents if assigned.get(a.id)])
    busy_since = dict(
        models.Assignment.select(models.Assignment.agent, pw.fn.MIN(models.Group.started_at))
        .join(models.Group)
        .where(models.Group.state == "running")
        .group_by(models.Assignment.agent)
        .tuples()
    )
    online: list[Sample] = []
    load: list[Sample] = []
    age: list[Sample] = []
    for a in agents:
        labels = {"org": a.org.name, "agent": a.agent_id}
        online.append(({**labels, "hostname": a.hostname}, 1 if a.online else 0))
        load.append((labels, int(assigned.get(a.id) or 0)))
        if assigned.get(a.id):
            # An agent running mocks reports usage every second or so; the age of its
            # newest record (or of the run, before the first one) is the ingest lag.
            stamps = [_naive(t) for t in (last_usage.get(a.id), busy_since.get(a.id)) if t]
            if stamps:
                age.append((labels, max(0.0, (now - max(stamps)).total_seconds())))

    invoices: list[Sample] = []
    q = _scoped(
        Invoice.select(models.Org.name, Invoice.status, pw.fn.COUNT(Invoice.id))
        .join(models.Org)
        .group_by(models.Org.name, Invoice.status),
        Invoice.org,
        org_id,
    )
    for org, status, n in q.tuples():
        invoices.append(({"org": org, "status": status}, int(n)))

    undelivered: list[Sample] = []
    nq = _scoped(
        Notice.select(models.Org.name, Notice.kind, pw.fn.COUNT(Notice.id))
        .join(models.Org)
        .where(Notice.sent_at.is_null(), Notice.tries > 0)
        .group_by(models.Org.name, Notice.kind),
        Notice.org,
        org_id,
    )
    for org, kind, n in nq.tuples():
        undelivered.append(({"org": org, "kind": kind}, int(n)))

    out: list[str] = []
    out += _family("mockmock_agent_online", "gauge", "1 while the agent is online.", online)
    out += _family(
        "mockmock_agent_assigned_mocks", "gauge", "Mocks of running groups placed on it.", load
    )
    out += _family(
        "mockmock_usage_ingest_age_seconds",
        "gauge",
        "Seconds since the newest usage record of an agent running mocks was stored.",
        age,
    )
    out += _family("mockmock_invoices", "gauge", "Invoices by status.", invoices)
    out += _family(
        "mockmock_notices_undelivered",
        "gauge",
        "Billing mails the mail server refused at least once and not delivered yet.",
        undelivered,
    )
    return "\n".join(out) + "\n"


def _newest_usage(agent_ids: list[int]) -> dict[int, dt.datetime]:
    """When each agent's newest usage record came; index lookups on (agent, seq) only."""
    if not agent_ids:
        return {}
    UR = models.UsageRecord
    newest = (
        UR.select(UR.agent, pw.fn.MAX(UR.seq)).where(UR.agent.in_(agent_ids)).group_by(UR.agent)
    )
    out: dict[int, dt.datetime] = {}
    for agent, seq in newest.tuples():
        row = UR.get_or_none(UR.agent == agent, UR.seq == seq)
        if row is not None:
            out[agent] = row.received_at
    return out


def _naive(value: dt.datetime | str) -> dt.datetime:
    if isinstance(value, str):  # SQLite hands MAX() of a datetime column back as text
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=None) if value.tzinfo else value
