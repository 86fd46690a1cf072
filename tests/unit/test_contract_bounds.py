"""The contract's request bounds are agent/limits.py's and appliance/api.py's: the contract
may not import them (the TUI loads no agent code), so they are written twice and kept equal."""

from __future__ import annotations

from agent import limits
from appliance import api
from appliance.contract import groups, targets


def test_the_contract_bounds_are_the_agents_and_the_apis() -> None:
    assert groups.MAX_COUNT == limits.MAX_COUNT
    assert groups.NAME_PATTERN == limits.NAME_PATTERN
    assert (groups.INT64_MIN, groups.INT64_MAX) == (limits.INT64_MIN, limits.INT64_MAX)
    assert groups.Count == limits.Count and groups.Seed == limits.Seed
    assert groups.Name == limits.Name
    assert targets.MAX_ID == api.MAX_ID
