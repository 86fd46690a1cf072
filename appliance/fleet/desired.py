"""Each agent's desired state, published safely by any number of replicas.

Revisions are bumped in the database (``revision = revision + 1``) in the same
transaction that reads the assignments, so two replicas never hand out one
revision twice and a higher revision never carries older content. Publishes of
different replicas may still reach the broker out of order, and the broker keeps
the last one as the retained state; so after its publish is acknowledged, a
replica asks :func:`moved_on` whether someone bumped the agent since, and if so
publishes again (a fresh bump and read). The last bump's publisher finds nothing
newer and stops, and nothing can land after its publish without a newer bump:
the retained state ends up the newest.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import peewee as pw

from agent import wire
from appliance import models
from appliance.db import database
from appliance.schedule import clock

CHUNK = 500  # agents per statement (IN lists stay small)


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def next_states(agent_ids: Iterable[str]) -> dict[str, wire.Desired]:
    """Bump the revision of each known agent and read its full desired state."""
    ids = sorted(set(agent_ids))
    out: dict[str, wire.Desired] = {}
    templates: dict[int, tuple[str, dict[str, Any]]] = {}  # id: name, body
    now = clock.system_seconds()  # issued_at: compared with the agents' clocks
    for chunk in _chunks(ids):
        with database.atomic():
            a = models.Agent
            if isinstance(database.obj, pw.PostgresqlDatabase):
                # Rows in id order, as the bus's ingest takes them: no deadlock.
                lock = a.select(a.id).where(a.agent_id.in_(chunk)).order_by(a.id)
                list(lock.for_update("FOR NO KEY UPDATE"))
            a.update(revision=a.revision + 1).where(a.agent_id.in_(chunk)).execute()
            agents = {
                pk: (agent_id, revision)
                for pk, agent_id, revision in a.select(a.id, a.agent_id, a.revision)
                .where(a.agent_id.in_(chunk))
                .tuples()
            }
            per_agent: dict[int, list[wire.Assignment]] = {pk: [] for pk in agents}
            asg, g = models.Assignment, models.Group
            # Plain tuples: a fleet after a failover holds ranges by the ten thousand,
            # and three models per row cost more than the rest of the publish.
            rows = (
                asg.select(
                    asg.agent,
                    asg.group,
                    asg.run_id,
                    asg.index_start,
                    asg.index_end,
                    asg.lease_until,
                    g.name,
                    g.seed,
                    g.template,
                )
                .join(g)
                .where(asg.agent.in_(list(agents)), g.state == "running")
                .order_by(asg.group, asg.index_start)
                .tuples()
            )
            rows = list(rows)
            t = models.Template
            new = {r[-1] for r in rows} - templates.keys()
            if new:
                for tpl_id, tpl_name, body in (
                    t.select(t.id, t.name, t.body).where(t.id.in_(sorted(new))).tuples()
                ):
                    templates[tpl_id] = (tpl_name, json.loads(body))
            for agent_pk, group_id, run_id, start, end, lease, name, seed, tpl_id in rows:
                tpl_name, body = templates[tpl_id]
                per_agent[agent_pk].append(
                    wire.Assignment(
                        group_id=group_id,
                        group=name,
                        run_id=run_id,
                        template_name=tpl_name,
                        template=body,
                        index_start=start,
                        index_end=end,
                        seed=seed,
                        lease_until=lease,
                    )
                )
        for pk, (agent_id, revision) in agents.items():
            out[agent_id] = wire.Desired(
                revision=revision, assignments=per_agent[pk], issued_at=now
            )
    return out


def moved_on(published: dict[str, int]) -> list[str]:
    """The agents whose revision is past the one published (another replica bumped it)."""
    ids = sorted(published)
    newer = []
    for chunk in _chunks(ids):
        a = models.Agent
        for agent_id, revision in (
            a.select(a.agent_id, a.revision).where(a.agent_id.in_(chunk)).tuples()
        ):
            if revision > published[agent_id]:
                newer.append(agent_id)
    return newer
