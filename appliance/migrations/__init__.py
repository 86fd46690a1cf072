"""Ordered schema migrations, one module per step; ``appliance.db.migrate()`` runs them.

Each step is recorded in ``schema_version``, so an upgrade never asks a user to delete
their data. v1 is a frozen copy of the first schema; every database, new or old, reaches
today's schema through the same steps (tests/unit/appliance/test_migrations.py checks).
"""

from __future__ import annotations

from collections.abc import Callable

import peewee

from appliance.migrations import (
    v01_initial,
    v02_fleet_access,
    v03_accounts_entitlements_audit,
    v04_billing,
    v05_roles,
    v06_targets,
    v07_bus_usage,
    v08_engine_reports,
    v09_notify,
    v10_scale,
)

Migration = Callable[[peewee.Database], None]

MIGRATIONS: list[Migration] = [
    v01_initial.apply,
    v02_fleet_access.apply,
    v03_accounts_entitlements_audit.apply,
    v04_billing.apply,
    v05_roles.apply,
    v06_targets.apply,
    v07_bus_usage.apply,
    v08_engine_reports.apply,
    v09_notify.apply,
    v10_scale.apply,
]
"""Append new steps; never edit or reorder a released one."""
