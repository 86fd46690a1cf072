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
from agent.faults import FAULT_NAMES
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
        "device_const",
        "route",
        "bulk",
        "object",
        "replay",
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


# -- schema additions: statuses, faults, commands, timing, identity -------------


def full_template() -> dict[str, Any]:
    return {
        "schema": 1,
        "transport": {
            "mqtt": {
                "url": "mqtt://127.0.0.1:1883",
                "topic": "lab/{device_id}/telemetry",
                "will": {"topic": "lab/{device_id}/status", "payload": "offline", "qos": 1},
            }
        },
        "interval": "1s",
        "credentials": {"username": "{device_id}", "password": "s3cret-{index}"},
        "arrival": "fixed",
        "burst": {"count": 5, "every": "1m"},
        "ramp_up": "30s",
        "windows": ["* 8-18 * * mon-fri"],
        "timezone": "Asia/Tokyo",
        "payload": {
            "seq": {"counter": {}},
            "temp": {"uniform": {"min": 18.0, "max": 26.0}},
            "state": "ok",
        },
        "statuses": {
            "normal": {},
            "degraded": {"interval": "5s", "payload": {"state": "warn"}},
            "offline": {"silent": True},
        },
        "initial": {"normal": 9, "degraded": 1},
        "transitions": [
            {"from": "normal", "to": "degraded", "after": "30s"},
            {"from": ["degraded"], "to": "normal", "probability": 0.1},
            {"to": "offline", "cron": "0 3 * * *"},
            {"from": "offline", "to": "normal", "on_message": {"topic": "lab/{device_id}/wake"}},
        ],
        "faults": {
            "out_of_range": {"rate": 0.01, "fields": ["temp"]},
            "missing_field": {"rate": 0.01},
            "wrong_type": {"rate": 0.01},
            "malformed_json": {"rate": 0.001},
            "duplicate": {"rate": 0.01},
            "out_of_order": {"rate": 0.01},
            "clock_skew": {"offset": "-2m", "devices": 0.1},
            "clock_drift": {"ppm": 50},
            "silent": {"rate": 0.001, "duration": "1m"},
            "tcp_drop": {"rate": 0.0001, "reconnect_after": "10s"},
            "reconnect_storm": {"rate": 5, "duration": "1m"},
        },
        "commands": {
            "topic": "lab/{device_id}/cmd",
            "reply_after": "200ms",
            "fail_rate": 0.05,
            "set_status": "degraded",
        },
        "verify": True,
    }


def scenario_of(tpl: dict[str, Any]) -> dict[str, Any]:
    return {
        "templates": {"thermo": tpl},
        "groups": [{"name": "g", "template": "thermo", "count": 2}],
    }


def test_a_template_using_everything_parses() -> None:
    t = parse_scenario(scenario_of(full_template())).templates["thermo"]
    assert [s.name for s in t.statuses.statuses] == ["normal", "degraded", "offline"]
    assert t.statuses.statuses[1].interval_ms == 5000
    assert t.statuses.statuses[2].silent
    assert len(t.statuses.transitions) == 4
    assert t.faults.clock_skew == (-120.0, 0.1)
    assert t.faults.reconnect_storm == (5.0, 1.0, 0.0, 60.0)
    assert t.commands.reply_topic == "lab/{device_id}/cmd/reply"
    assert t.timing.burst == (5, 60_000) and t.timing.ramp_up_ms == 30_000
    assert t.transport.mqtt.will == ("lab/{device_id}/status", "offline", 1, False)
    assert t.credentials == ("{device_id}", "s3cret-{index}")
    assert t.verify_qos == 1


F = ["faults"]


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (["schema"], 2, "templates.thermo.schema: unsupported schema version 2"),
        (["statuses"], {}, "templates.thermo.statuses: must map status names"),
        (
            ["statuses", "degraded", "interval"],
            "0s",
            "templates.thermo.statuses.degraded.interval: must be at least 1ms",
        ),
        (
            ["statuses", "degraded", "payload", "temp"],
            {"sine": {"min": 0, "max": 1, "period": 0}},
            "templates.thermo.statuses.degraded.payload.temp.sine.period: must be > 0",
        ),
        (["initial"], "broken", "templates.thermo.initial: unknown status 'broken'"),
        (
            ["transitions", 0, "to"],
            "nowhere",
            "templates.thermo.transitions[0].to: unknown status 'nowhere'",
        ),
        (
            ["transitions", 1, "from"],
            ["degraded", "gone"],
            "templates.thermo.transitions[1].from[1]: unknown status 'gone'",
        ),
        (
            ["transitions", 0],
            {"to": "degraded", "after": "1s", "probability": 0.5},
            "templates.thermo.transitions[0]: must have exactly one of",
        ),
        (
            ["transitions", 2, "cron"],
            "61 * * * *",
            "templates.thermo.transitions[2].cron: minute: 61 is outside 0-59",
        ),
        (
            ["transitions", 1, "probability"],
            1.5,
            "templates.thermo.transitions[1].probability: must be > 0 and <= 1",
        ),
        (
            ["transitions", 3, "on_message", "topic"],
            "lab/+/wake",
            "templates.thermo.transitions[3].on_message.topic: must be a topic name",
        ),
        ([*F, "flaky"], {}, "templates.thermo.faults.flaky: unknown fault"),
        ([*F, "duplicate", "rate"], 2, "templates.thermo.faults.duplicate.rate: must be between"),
        (
            [*F, "out_of_range", "fields"],
            ["state"],
            "templates.thermo.faults.out_of_range.fields[0]: field 'state' has no bounds",
        ),
        (
            [*F, "missing_field", "fields"],
            ["nope"],
            "templates.thermo.faults.missing_field.fields[0]: unknown payload field 'nope'",
        ),
        ([*F, "clock_skew", "offset"], "soon", "templates.thermo.faults.clock_skew.offset:"),
        ([*F, "silent", "duration"], 0, "templates.thermo.faults.silent.duration: must be > 0"),
        ([*F, "reconnect_storm", "rate"], 0, "templates.thermo.faults.reconnect_storm.rate:"),
        (
            ["commands", "set_status"],
            "zzz",
            "templates.thermo.commands.set_status: unknown status 'zzz'",
        ),
        (
            ["commands", "reply_topic"],
            "lab/{device_id}/cmd",
            "templates.thermo.commands.reply_topic: must differ from topic",
        ),
        (["commands", "fail_rate"], -1, "templates.thermo.commands.fail_rate: must be between"),
        (["windows", 0], "* * *", "templates.thermo.windows[0]: must have 5 fields"),
        (["timezone"], "Mars/Olympus", "templates.thermo.timezone: unknown time zone"),
        (["burst", "count"], 0, "templates.thermo.burst.count: must be between 1 and 1000"),
        (["arrival"], "bursty", "templates.thermo.arrival:"),
        (
            ["credentials", "username"],
            "{serial}",
            "templates.thermo.credentials.username: unknown placeholder {serial}",
        ),
        (
            ["transport", "mqtt", "will", "topic"],
            "lab/#",
            "templates.thermo.transport.mqtt.will.topic: must be a topic name",
        ),
        (
            ["payload", "pos"],
            {"route": {"points": [[1, 2]], "speed_kmh": 5}},
            "templates.thermo.payload.pos.route.points: must have at least 2 points",
        ),
        (
            ["payload", "pos"],
            {"route": {"points": [[1, 2], [91, 2]], "speed_kmh": 5}},
            "templates.thermo.payload.pos.route.points[1]: lat must be -90..90",
        ),
        (
            ["payload", "b"],
            {"bulk": {"count": 3, "of": {"uniform": {"min": 2, "max": 1}}}},
            "templates.thermo.payload.b.bulk.of.uniform.max: must be >= min",
        ),
        (
            ["payload", "o"],
            {"object": {"x": {"nope": {}}}},
            "templates.thermo.payload.o.object.x: unknown generator 'nope'",
        ),
        (
            ["payload", "k"],
            {"device_const": {"values": [1], "min": 0, "max": 1}},
            "templates.thermo.payload.k.device_const.values: give either values or min/max",
        ),
        (
            ["payload", "r"],
            {"replay": {"rows": [{"a": 1}], "field": "b"}},
            "templates.thermo.payload.r.replay.rows[0]: has no field 'b'",
        ),
    ],
)
def test_new_fields_name_their_path(path, value, expected) -> None:
    doc = full_template()
    _set(doc, path, value)
    with pytest.raises(ScenarioError) as e:
        parse_scenario(scenario_of(doc))
    assert str(e.value).startswith(expected), str(e.value)
    assert "\n" not in str(e.value)


def test_http_templates_cannot_use_what_needs_a_broker() -> None:
    doc = full_template()
    doc["transport"] = {"http": {"url": "http://127.0.0.1:9/{device_id}"}}
    del doc["faults"]["tcp_drop"], doc["faults"]["reconnect_storm"]
    del doc["transitions"][3]
    with pytest.raises(ScenarioError, match=r"^templates\.thermo\.commands: needs an mqtt"):
        parse_scenario(scenario_of(doc))


def test_scenario_schema_version_is_checked() -> None:
    doc = scenario_of(full_template())
    doc["schema"] = "2"
    with pytest.raises(ScenarioError, match=r"^schema: unsupported schema version '2'"):
        parse_scenario(doc)


_statuses = st.dictionaries(
    st.sampled_from(["normal", "degraded", "offline", ""]),
    st.one_of(
        st.none(),
        st.fixed_dictionaries(
            {},
            optional={
                "interval": st.sampled_from(["1s", "0s", 5, "x", None]),
                "silent": st.booleans(),
                "payload": st.dictionaries(st.sampled_from(["temp", "new"]), json_values),
                "omit": st.lists(st.sampled_from(["temp", "seq", "zz"]), max_size=2),
            },
        ),
        json_values,
    ),
    max_size=3,
)
_transition = st.fixed_dictionaries(
    {"to": st.sampled_from(["normal", "degraded", "nope"])},
    optional={
        "from": st.one_of(st.sampled_from(["*", "normal", "x"]), st.lists(st.text(max_size=3))),
        "after": st.sampled_from(["1s", "0s", -1, "later"]),
        "cron": st.sampled_from(["* * * * *", "*/0 * * * *", "bad", "1 2 3 4 5 6"]),
        "on_message": st.one_of(st.text(max_size=8), json_values),
        "probability": st.floats(-1, 2) | json_values,
    },
)
_faults = st.dictionaries(
    st.sampled_from([*FAULT_NAMES, "bogus"]),
    st.one_of(
        json_values,
        st.fixed_dictionaries(
            {},
            optional={
                "rate": st.floats(-0.5, 1.5) | json_values,
                "devices": st.floats(-0.5, 1.5),
                "fields": st.lists(st.sampled_from(["temp", "seq", "x"]), max_size=2),
                "offset": st.sampled_from(["-1m", "+2s", 3, "x"]),
                "ppm": st.floats(-2e6, 2e6),
                "duration": st.sampled_from(["1s", 0, "x"]),
                "reconnect_after": st.sampled_from(["1s", -1]),
            },
        ),
    ),
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(
    statuses=st.one_of(st.none(), _statuses, json_values),
    initial=st.one_of(st.none(), json_values, st.sampled_from(["normal", "x"])),
    transitions=st.one_of(st.none(), st.lists(_transition, max_size=3), json_values),
    faults=st.one_of(st.none(), _faults, json_values),
    commands=st.one_of(
        st.none(),
        json_values,
        st.fixed_dictionaries(
            {"topic": st.sampled_from(["c/{device_id}", "c/#", "{x}"])},
            optional={
                "fail_rate": st.floats(-1, 2),
                "reply_after": st.sampled_from(["1s", "x", -1]),
                "set_status": st.sampled_from(["normal", "x"]),
            },
        ),
    ),
    timing=st.fixed_dictionaries(
        {},
        optional={
            "arrival": st.sampled_from(["fixed", "poisson", "x"]),
            "burst": json_values,
            "ramp_up": json_values,
            "windows": st.lists(st.sampled_from(["* * * * *", "x", "60 * * * *"]), max_size=2),
            "timezone": st.sampled_from(["UTC", "Asia/Tokyo", "Nowhere/X", "../etc"]),
            "schema": json_values,
        },
    ),
)
def test_random_behaviour_is_accepted_or_rejected_with_a_path(
    statuses, initial, transitions, faults, commands, timing
) -> None:
    tpl: dict[str, Any] = {
        "transport": {"mqtt": {"url": "mqtt://127.0.0.1:1", "topic": "x/{device_id}"}},
        "payload": {"seq": {"counter": {}}, "temp": {"uniform": {"min": 0.0, "max": 1.0}}},
        **timing,
    }
    for key, value in (
        ("statuses", statuses),
        ("initial", initial),
        ("transitions", transitions),
        ("faults", faults),
        ("commands", commands),
    ):
        if value is not None:
            tpl[key] = value
    try:
        parse_scenario(scenario_of(tpl))
    except ScenarioError as e:
        assert e.path.startswith("templates.thermo"), str(e)
        assert e.message and "\n" not in e.message
