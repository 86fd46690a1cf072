"""Fault damage as pure functions of a value and a seeded stream."""

from __future__ import annotations

import random

import orjson
import pytest

from agent.faults import DeviceFaults, Faults, FieldFault, malformed, out_of_range, wrong_type


@pytest.mark.parametrize("bounds", [(18.0, 26.0, False), (0, 5, True), (3.0, 3.0, False)])
def test_out_of_range_is_always_outside_and_keeps_the_type(bounds) -> None:
    rng = random.Random(1)
    lo, hi, is_int = bounds
    values = [out_of_range(bounds, rng) for _ in range(2000)]
    assert all(v < lo or v > hi for v in values)
    assert all(isinstance(v, int) for v in values) if is_int else True
    assert any(v < lo for v in values) and any(v > hi for v in values)
    span = (hi - lo) or abs(hi)
    assert all(v <= hi + span + 1 and v >= lo - span - 1 for v in values)


@pytest.mark.parametrize(
    ("value", "wrong"),
    [(21.5, "21.5"), (3, "3"), (True, "true"), ("ok", 2), (None, "null"), ([1], "[1]")],
)
def test_wrong_type_changes_the_type(value, wrong) -> None:
    assert wrong_type(value) == wrong
    assert type(wrong_type(value)) is not type(value)


def test_malformed_is_never_valid_json() -> None:
    rng = random.Random(2)
    data = orjson.dumps({"a": [1, 2, {"b": "c"}], "d": 1.5, "e": None})
    for _ in range(500):
        cut = malformed(data, rng)
        assert cut and data.startswith(cut) and cut != data
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(cut)


def test_devices_share_is_drawn_per_device() -> None:
    faults = Faults(
        missing_field=FieldFault(rate=0.5, devices=0.3, fields=None), duplicate=(0.1, 1.0)
    )
    devices = [DeviceFaults(faults, random.Random(i)) for i in range(2000)]
    share = sum(1 for d in devices if d.missing) / len(devices)
    assert share == pytest.approx(0.3, abs=0.04)
    assert all(d.duplicate == 0.1 for d in devices)
    assert all(d.malformed == 0 and not d.clock for d in devices)


def test_clock_shift_is_skew_plus_growing_drift() -> None:
    d = DeviceFaults(Faults(clock_skew=(-30.0, 1.0), clock_drift=(100.0, 1.0)), random.Random(0))
    assert d.clock_shift(1000.0, 1000.0) == -30.0
    assert d.clock_shift(1000.0 + 86_400, 1000.0) == pytest.approx(-30.0 + 8.64)  # 100 ppm/day
