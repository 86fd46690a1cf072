"""Generators: bounds, moments, reproducibility — with fixed seeds."""

from __future__ import annotations

import itertools
import statistics
import uuid

import orjson
import pytest

from agent.errors import ScenarioError
from agent.generators import compile_payload
from agent.template import device_id, load_scenario, parse_template

NOW = 1_800_000_000.0


def template(payload: dict, **extra) -> object:
    raw = {
        "transport": {"mqtt": {"url": "mqtt://127.0.0.1:1", "topic": "t/{device_id}"}},
        "interval": "1s",
        "payload": payload,
        **extra,
    }
    return parse_template("t", raw)


def stream(payload: dict, n: int, *, index: int = 0, seed: int | None = 7) -> list[dict]:
    t = template(payload)
    p = compile_payload(t, group="g", index=index, device_id=device_id(t, "g", index), seed=seed)
    return [orjson.loads(p.encode(NOW + i)) for i in range(n)]


def col(rows: list[dict], key: str) -> list:
    return [r[key] for r in rows]


def test_same_seed_same_stream_different_devices_differ() -> None:
    payload = {"a": {"uniform": {"min": 0.0, "max": 1.0}}, "b": {"uuid": {}}}
    assert stream(payload, 50, seed=1) == stream(payload, 50, seed=1)
    assert stream(payload, 50, seed=1) != stream(payload, 50, seed=2)
    assert stream(payload, 50, index=0) != stream(payload, 50, index=1)


def test_counter_strictly_increasing_with_step() -> None:
    assert col(stream({"n": {"counter": {"start": 10, "step": 3}}}, 5), "n") == [10, 13, 16, 19, 22]


def test_uniform_bounds_types_and_mean() -> None:
    floats = col(stream({"x": {"uniform": {"min": 18.0, "max": 26.0}}}, 4000), "x")
    assert all(18.0 <= x <= 26.0 for x in floats)
    assert abs(statistics.fmean(floats) - 22.0) < 0.2
    ints = col(stream({"x": {"uniform": {"min": 1, "max": 6}}}, 2000), "x")
    assert set(ints) == {1, 2, 3, 4, 5, 6}
    assert all(isinstance(i, int) for i in ints)


def test_normal_moments_and_clamp() -> None:
    xs = col(stream({"x": {"normal": {"mean": 50, "stddev": 5, "decimals": None}}}, 5000), "x")
    assert abs(statistics.fmean(xs) - 50) < 0.3
    assert abs(statistics.stdev(xs) - 5) < 0.3
    clamped = col(
        stream({"x": {"normal": {"mean": 0, "stddev": 10, "min": -1, "max": 1}}}, 500), "x"
    )
    assert min(clamped) == -1 and max(clamped) == 1


def test_weighted_choice_frequencies() -> None:
    spec = {"s": {"choice": {"values": ["ok", "warn", "ng"], "weights": [90, 8, 2]}}}
    xs = col(stream(spec, 10_000), "s")
    assert abs(xs.count("ok") / len(xs) - 0.90) < 0.02
    assert abs(xs.count("warn") / len(xs) - 0.08) < 0.015
    assert 0 < xs.count("ng") / len(xs) < 0.04


def test_timestamp_formats_follow_the_clock() -> None:
    rows = stream(
        {
            "ms": {"timestamp": {"format": "epoch_ms"}},
            "s": {"timestamp": {"format": "epoch_s"}},
            "iso": {"timestamp": {"format": "iso"}},
        },
        2,
    )
    assert col(rows, "ms") == [1_800_000_000_000, 1_800_000_001_000]
    assert col(rows, "s") == [1_800_000_000, 1_800_000_001]
    assert rows[0]["iso"] == "2027-01-15T08:00:00.000+00:00"


def test_const_device_id_bool_uuid() -> None:
    rows = stream(
        {
            "fw": {"const": {"v": [1, 2]}},
            "id": {"device_id": {}},
            "b": {"bool": {"p_true": 0.25}},
            "u": {"uuid": {}},
            "plain": "1.4.2",
        },
        2000,
        index=3,
    )
    assert {r["id"] for r in rows} == {"g-00003"}
    assert all(r["fw"] == {"v": [1, 2]} and r["plain"] == "1.4.2" for r in rows)
    assert abs(sum(col(rows, "b")) / len(rows) - 0.25) < 0.03
    us = col(rows, "u")
    assert len(set(us)) == len(us) and uuid.UUID(us[0]).version == 4


def test_sine_random_walk_decay() -> None:
    rows = stream(
        {
            "sine": {"sine": {"min": 10, "max": 20, "period": "60s"}},
            "walk": {"random_walk": {"start": 5, "step": 1, "min": 0, "max": 10}},
            "decay": {"decay": {"start": 100, "half_life": "10s", "decimals": 3}},
        },
        120,
    )
    s = col(rows, "sine")
    assert all(10 <= x <= 20 for x in s) and max(s) - min(s) > 9
    w = col(rows, "walk")
    assert all(0 <= x <= 10 for x in w)
    assert all(abs(b - a) <= 1.0001 for a, b in itertools.pairwise(w))
    d = col(rows, "decay")
    assert d[0] == 100 and d[10] == 50 and d[20] == 25
    assert all(b < a for a, b in itertools.pairwise(d))


def test_fields_keep_template_order_on_the_wire() -> None:
    t = template({"z": 1, "a": 2, "m": 3})
    p = compile_payload(t, group="g", index=0, device_id="d", seed=1)
    assert p.encode(NOW) == b'{"z":1,"a":2,"m":3}'


def test_device_const_is_fixed_per_device_and_seeded() -> None:
    spec = {
        "model": {"device_const": {"values": ["a", "b", "c"], "weights": [1, 1, 2]}},
        "cal": {"device_const": {"min": 0.5, "max": 1.5}},
        "slot": {"device_const": {"min": 1, "max": 4}},
    }
    devices = [stream(spec, 5, index=i) for i in range(400)]
    for rows in devices:
        assert len({orjson.dumps(r) for r in rows}) == 1  # constant within a device
    firsts = [rows[0] for rows in devices]
    assert abs(col(firsts, "model").count("c") / 400 - 0.5) < 0.08
    assert all(0.5 <= c <= 1.5 for c in col(firsts, "cal"))
    assert set(col(firsts, "slot")) == {1, 2, 3, 4}
    assert stream(spec, 1, index=3) == stream(spec, 1, index=3)


def test_route_walks_the_polyline_at_its_speed() -> None:
    # Two points ~1.11 km apart on a meridian; 36 km/h = 10 m/s.
    spec = {
        "pos": {
            "route": {
                "points": [[35.0, 139.0, 10.0], [35.01, 139.0, 20.0]],
                "speed_kmh": 36,
                "start": "first",
                "loop": False,
            }
        }
    }
    rows = [r["pos"] for r in stream(spec, 200)]
    assert rows[0] == {
        "lat": 35.0,
        "lon": 139.0,
        "elevation": 10.0,
        "speed_kmh": 36.0,
        "heading": 0.0,
    }
    step = rows[1]["lat"] - rows[0]["lat"]
    assert step * 111_195 == pytest.approx(10.0, rel=0.01)  # metres per second
    assert rows[55]["elevation"] == pytest.approx(15.0, abs=0.1)  # halfway up
    assert rows[-1]["lat"] == 35.01 and rows[-1]["speed_kmh"] == 0.0  # stopped at the end


def test_route_loops_and_devices_start_at_different_places() -> None:
    spec = {"pos": {"route": {"points": [[0, 0], [0, 0.01], [0.01, 0.01]], "speed_kmh": 100}}}
    a, b = stream(spec, 300, index=0), stream(spec, 300, index=1)
    assert a[0]["pos"] != b[0]["pos"]
    lats = [r["pos"]["lat"] for r in a]
    lons = [r["pos"]["lon"] for r in a]
    assert all(0 <= x <= 0.01 for x in lats + lons)
    assert max(lats) > 0.009 and min(lats) < 0.001  # went all the way round


def test_bulk_and_object_build_arrays_of_samples() -> None:
    spec = {
        "samples": {
            "bulk": {
                "count": 4,
                "spacing": "250ms",
                "of": {"object": {"t": {"timestamp": {}}, "v": {"counter": {}}}},
            }
        }
    }
    rows = stream(spec, 2)
    assert rows[0]["samples"] == [
        {"t": 1_799_999_999_250, "v": 0},
        {"t": 1_799_999_999_500, "v": 1},
        {"t": 1_799_999_999_750, "v": 2},
        {"t": 1_800_000_000_000, "v": 3},
    ]
    assert rows[1]["samples"][0]["v"] == 4


def test_replay_rows_in_order_by_time_and_looping(tmp_path) -> None:
    (tmp_path / "d.csv").write_text("t,temp,label\n0,20.5,a\n2,21,b\n4,,c\n")
    (tmp_path / "d.jsonl").write_text('{"v": 1}\n\n{"v": 2}\n')
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        """
templates:
  t:
    transport: {mqtt: {url: "mqtt://127.0.0.1:1", topic: "x"}}
    payload:
      row: {replay: {file: d.csv, time_field: t, speed: 2}}
      temp: {replay: {file: d.csv, field: temp, loop: false}}
      v: {replay: {file: d.jsonl}}
groups: [{name: g, template: t, count: 1}]
"""
    )
    t = load_scenario(scenario).templates["t"]
    # The rows travel inline (what the appliance stores and agents receive).
    assert t.to_dict()["payload"]["v"] == {"replay": {"rows": [{"v": 1}, {"v": 2}]}}
    p = compile_payload(t, group="g", index=0, device_id="d", seed=1)
    rows = [p.next(NOW + i) for i in range(5)]
    # speed 2: a row every second of replay time; the file spans 4 s, then loops.
    assert [r["row"]["label"] for r in rows] == ["a", "b", "a", "b", "a"]
    assert col(rows, "temp") == [20.5, 21, None, None, None]
    assert [r["v"]["v"] for r in rows] == [1, 2, 1, 2, 1]


def test_replay_file_errors_name_the_path(tmp_path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        """
templates:
  t:
    transport: {mqtt: {url: "mqtt://127.0.0.1:1", topic: "x"}}
    payload:
      row: {replay: {file: missing.csv}}
groups: [{name: g, template: t, count: 1}]
"""
    )
    with pytest.raises(ScenarioError) as e:
        load_scenario(scenario)
    assert e.value.path == "templates.t.payload.row.replay.file"
    assert "cannot read" in e.value.message
    # Outside a scenario file (the API, an agent) a file is never read.
    with pytest.raises(ScenarioError, match=r"payload\.r\.replay\.file: is only read"):
        template({"r": {"replay": {"file": "/etc/passwd"}}})


def test_generated_encoder_handles_any_field_name_and_many_fields() -> None:
    # Field names go into generated code as literals: quotes, braces and newlines
    # must come out as the same JSON keys, in order, and never run as code.
    odd = {'q"uote': 1, "b'rack{et}": 2, "new\nline": 3, "ü ñ": {"counter": {}}}
    t = template(odd)
    p = compile_payload(t, group="g", index=0, device_id="d", seed=1)
    first, second = orjson.loads(p.encode(NOW)), orjson.loads(p.encode(NOW))
    assert list(first) == list(odd)
    assert (first["ü ñ"], second["ü ñ"]) == (0, 1)
    many = {f"f{i}": i for i in range(250)}  # beyond the generated encoder's size
    p = compile_payload(template(many), group="g", index=0, device_id="d", seed=1)
    assert orjson.loads(p.encode(NOW)) == many
