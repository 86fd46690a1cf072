"""Generators: bounds, moments, reproducibility — with fixed seeds."""

from __future__ import annotations

import itertools
import statistics
import uuid

import orjson

from agent.generators import compile_payload
from agent.template import device_id, parse_template

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
