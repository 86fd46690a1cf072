"""v7: Usage per journal epoch and only inside assignment spans; counters per agent process."""

from __future__ import annotations

import peewee

from appliance import models
from appliance.fleet import history
from appliance.migrations.schema_ops import add_missing_columns, replace_indexes
from appliance.usage.models import MODELS as USAGE
from appliance.usage.models import UsageEpoch


def apply(db: peewee.Database) -> None:
    db.create_tables([*history.MODELS, *USAGE], safe=True)
    filled = {
        models.Agent: ("incarnation", "incarnation_at"),
        models.UsageRecord: ("epoch",),
        models.GroupStats: ("incarnation", "incarnation_at"),
    }
    add_missing_columns(db, models.Usage, "agent", "index_start")
    for model, names in filled.items():
        add_missing_columns(db, model, *names)
        for name in names:  # nullable columns are added empty: give old rows the default
            field = model._meta.fields[name]
            model.update({field: field.default}).where(field.is_null()).execute()
    replace_indexes(db, models.UsageRecord, ("agent_id", "seq"))
    replace_indexes(db, models.GroupStats, ("group_id", "run_id", "agent_id"))
    replace_indexes(db, models.Usage)
    # Journals older than epochs keep their sequence under the empty epoch.
    for agent in models.Agent.select().where(models.Agent.acked_seq > 0):
        UsageEpoch.get_or_create(agent=agent.id, epoch="", defaults={"acked_seq": agent.acked_seq})
    history.backfill()
