"""What an org may run: entitlement names and their capacity.

``on_demand:cnN`` admits N mocks at once (the tier accrues hours while used),
``free`` the free tier's F mocks, ``flat:<plan>`` a bought window. The full
entitlement lifecycle (windows, intervals for billing) builds on this.
"""

from __future__ import annotations

import re

from appliance.errors import ApplianceError, Conflict

ON_DEMAND_TIERS = {f"cn{n}": n for n in (10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000)}
FREE_CAPACITY = 1

_NAME = re.compile(r"^(on_demand:cn\d+|free|flat:[A-Za-z0-9_.-]+)$")


def capacity(entitlement: str) -> int:
    """Mocks the entitlement admits at once; raises for names it does not know."""
    if not _NAME.match(entitlement):
        raise ApplianceError(
            f"entitlement: {entitlement!r} is not on_demand:<tier>, free or flat:<plan>"
        )
    if entitlement == "free":
        return FREE_CAPACITY
    if entitlement.startswith("on_demand:"):
        tier = entitlement.split(":", 1)[1]
        if tier not in ON_DEMAND_TIERS:
            known = ", ".join(ON_DEMAND_TIERS)
            raise ApplianceError(f"entitlement: unknown On-Demand tier {tier!r} (known: {known})")
        return ON_DEMAND_TIERS[tier]
    raise Conflict(f"entitlement: {entitlement!r}: no active flat plan of that name")
