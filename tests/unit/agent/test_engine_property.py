"""Any template the parser accepts runs in the engine without an exception."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.engine import preview
from agent.errors import ScenarioError
from agent.template import parse_template

fields = st.sampled_from(
    [
        {"counter": {}},
        {"uniform": {"min": 0, "max": 10}},
        {"normal": {"mean": 5, "stddev": 2}},
        {"timestamp": {"format": "iso"}},
        {"route": {"points": [[1, 1], [1.01, 1]], "speed_kmh": 50}},
        {"bulk": {"count": 2, "of": {"sine": {"min": 0, "max": 1, "period": "10s"}}}},
        {"device_const": {"min": 1, "max": 3}},
        {"replay": {"rows": [1, 2, 3]}},
        "const",
    ]
)
rates = st.sampled_from([0.0, 0.05, 0.5, 1.0])
faults = st.fixed_dictionaries(
    {},
    optional={
        "out_of_range": st.builds(lambda r: {"rate": r}, rates),
        "missing_field": st.builds(lambda r: {"rate": r}, rates),
        "wrong_type": st.builds(lambda r: {"rate": r}, rates),
        "malformed_json": st.builds(lambda r: {"rate": r}, rates),
        "duplicate": st.builds(lambda r: {"rate": r}, rates),
        "out_of_order": st.builds(lambda r: {"rate": r}, rates),
        "clock_skew": st.just({"offset": "-1m", "devices": 0.5}),
        "clock_drift": st.just({"ppm": 1000}),
        "silent": st.builds(lambda r: {"rate": r, "duration": "2s"}, rates),
        "tcp_drop": st.builds(lambda r: {"rate": r, "reconnect_after": "1s"}, rates),
        "reconnect_storm": st.just({"rate": 3, "reconnect_after": "500ms"}),
    },
)
transitions = st.lists(
    st.sampled_from(
        [
            {"from": "a", "to": "b", "after": "2s"},
            {"to": "a", "probability": 0.3},
            {"from": "b", "to": "c", "cron": "*/2 * * * * *"},
            {"to": "b", "on_message": "x/{device_id}/go"},
        ]
    ),
    max_size=4,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    payload=st.dictionaries(st.sampled_from(["f1", "f2", "f3"]), fields, min_size=1),
    faults=faults,
    transitions=transitions,
    interval=st.sampled_from(["100ms", "1s"]),
    timing=st.fixed_dictionaries(
        {},
        optional={
            "arrival": st.just("poisson"),
            "burst": st.just({"count": 2, "every": "3s"}),
            "ramp_up": st.just("2s"),
            "windows": st.just(["* * * * *"]),
        },
    ),
    verify=st.booleans(),
    seed=st.integers(0, 2**32),
)
def test_parsed_templates_run(payload, faults, transitions, interval, timing, verify, seed) -> None:
    doc: dict[str, Any] = {
        "transport": {"mqtt": {"url": "mqtt://127.0.0.1:1", "topic": "x/{device_id}"}},
        "interval": interval,
        "payload": payload,
        "statuses": {"a": {}, "b": {"interval": "500ms"}, "c": {"silent": True}},
        "transitions": transitions,
        "faults": faults,
        "verify": verify,
        **timing,
    }
    try:
        parse_template("t", doc)
    except ScenarioError:
        return  # e.g. out_of_range with no bounded field: rejected with a path, fine
    rows = asyncio.run(preview("t", doc, devices=2, count=10, seed=seed))
    for r in rows:
        assert ("payload" in r) != ("raw" in r)
        if "raw" in r:
            try:
                orjson.loads(r["raw"])
            except orjson.JSONDecodeError:
                continue
            raise AssertionError(f"a malformed message parsed: {r['raw']!r}")
