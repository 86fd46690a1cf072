"""Scenario parsing: the core scenario is accepted, every mistake names its field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import ScenarioError
from agent.template import (
    device_id,
    expand_topic,
    load_scenario,
    parse_duration_ms,
    parse_scenario,
)

EXAMPLE = Path(__file__).parents[3] / "deploy" / "examples" / "thermo.yaml"


@pytest.fixture
def core() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE.read_text())


def test_example_scenario_parses(core) -> None:
    s = load_scenario(EXAMPLE)
    t = s.templates["thermo"]
    assert t.interval_ms == 1000
    mqtt = t.transport.mqtt
    assert (mqtt.host, mqtt.port, mqtt.qos, mqtt.connection) == (
        "127.0.0.1",
        18830,
        1,
        "per_device",
    )
    assert list(t.payload) == ["device", "seq", "temp", "state", "ts", "fw"]
    assert [(g.name, g.count) for g in s.groups] == [("thermo-fleet", 50)]
    assert t.to_dict() == core["templates"]["thermo"]


def test_device_ids_and_topics_expand_per_device(core) -> None:
    t = parse_scenario(core).templates["thermo"]
    ids = [device_id(t, "thermo-fleet", i) for i in (0, 7, 12345)]
    assert ids == ["thermo-fleet-00000", "thermo-fleet-00007", "thermo-fleet-12345"]
    topic = expand_topic(t.transport.mqtt.topic, device_id=ids[1], group="g", index=7)
    assert topic == "lab/thermo-fleet-00007/telemetry"


@pytest.mark.parametrize(
    ("value", "ms"),
    [("500ms", 500), ("1s", 1000), ("1.5s", 1500), ("2m", 120_000), ("1h", 3_600_000), (2, 2000)],
)
def test_durations(value, ms) -> None:
    assert parse_duration_ms(value) == ms


def _set(d: dict, path: list[Any], value: Any) -> None:
    for k in path[:-1]:
        d = d[k]
    if value is _DELETE:
        del d[path[-1]]
    else:
        d[path[-1]] = value


_DELETE = object()
T = ["templates", "thermo"]


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            [*T, "payload", "temp"],
            {"unifrom": {}},
            "templates.thermo.payload.temp: unknown generator",
        ),
        (["groups", 0, "count"], -5, "groups[0].count: must be >= 1"),
        (["groups", 0, "count"], "many", "groups[0].count: expected int, got str"),
        ([*T, "interval"], "fast", "templates.thermo.interval: must be a duration"),
        ([*T, "interval"], "-1s", "templates.thermo.interval: must not be negative"),
        ([*T, "interval"], "0ms", "templates.thermo.interval: must be at least 1ms"),
        (
            [*T, "payload", "temp"],
            {"uniform": {"min": 5, "max": 1}},
            "templates.thermo.payload.temp.uniform.max: must be >= min",
        ),
        (
            [*T, "payload", "temp"],
            {"sine": {"min": 0, "max": 1, "period": 0}},
            "templates.thermo.payload.temp.sine.period: must be > 0",
        ),
        (
            [*T, "payload", "state"],
            {"choice": {"values": ["a", "b"], "weights": [1]}},
            "templates.thermo.payload.state.choice.weights: must have one weight per value",
        ),
        (
            [*T, "payload", "ts"],
            {"timestamp": {"format": "rfc"}},
            "templates.thermo.payload.ts.timestamp.format:",
        ),
        ([*T, "transport", "mqtt", "qos"], 3, "templates.thermo.transport.mqtt.qos:"),
        (
            [*T, "transport", "mqtt", "topic"],
            "lab/{serial}",
            "templates.thermo.transport.mqtt.topic: unknown placeholder {serial}",
        ),
        (
            [*T, "transport", "mqtt", "url"],
            "http://x",
            "templates.thermo.transport.mqtt.url: scheme must be",
        ),
        ([*T, "colour"], "red", "templates.thermo: unknown field 'colour'"),
        (["groups", 0, "template"], "nope", "groups[0].template: unknown template 'nope'"),
        (["groups", 0, "count"], _DELETE, "groups[0]: missing required field 'count'"),
        (["groups"], [], "groups: must define at least one group"),
    ],
)
def test_bad_fields_name_their_path(core, path, value, expected) -> None:
    _set(core, path, value)
    with pytest.raises(ScenarioError) as e:
        parse_scenario(core)
    assert str(e.value).startswith(expected), str(e.value)
    assert "\n" not in str(e.value)


def test_duplicate_group_names_are_rejected(core) -> None:
    core["groups"].append(copy.deepcopy(core["groups"][0]))
    with pytest.raises(ScenarioError, match=r"^groups\[1\]\.name: duplicate"):
        parse_scenario(core)


def test_file_errors_are_one_line(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("templates: [unclosed\n")
    with pytest.raises(ScenarioError, match=r"invalid YAML at line 2"):
        load_scenario(bad)
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.yaml")
    j = tmp_path / "s.json"
    j.write_text("{not json")
    with pytest.raises(ScenarioError, match="invalid JSON"):
        load_scenario(j)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | st.floats(-5, 5) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
generator_names = st.sampled_from(
    [
        "const",
        "counter",
        "uniform",
        "normal",
        "choice",
        "timestamp",
        "bool",
        "sine",
        "decay",
        "random_walk",
        "uuid",
        "device_id",
        "nope",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    gen=generator_names,
    params=json_values,
    interval=st.one_of(json_values, st.sampled_from(["1s", "10ms", "-2s", "0s", "3x"])),
    count=json_values,
)
def test_random_templates_are_accepted_or_rejected_with_a_path(
    gen, params, interval, count
) -> None:
    doc = {
        "templates": {
            "t": {
                "transport": {"mqtt": {"url": "mqtt://127.0.0.1:1", "topic": "x/{device_id}"}},
                "interval": interval,
                "payload": {"f": {gen: params}},
            }
        },
        "groups": [{"name": "g", "template": "t", "count": count}],
    }
    try:
        parse_scenario(doc)
    except ScenarioError as e:
        assert e.path.startswith(("templates.t", "groups[0]")), str(e)
        assert e.message and "\n" not in e.message
