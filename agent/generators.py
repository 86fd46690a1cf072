"""Payload generators: one seeded random stream per device, fields in order.

Each payload field names one generator (``temp: {uniform: {min: 18, max: 26}}``).
Parameters are validated once, when the template is parsed; at run time a
device's fields are plain closures over a per-device ``random.Random`` whose
seed derives from (group seed, group, index), so the same seed always gives
the same stream and two devices never share one.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import uuid as uuidlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import msgspec
import orjson

from agent.errors import ScenarioError

if TYPE_CHECKING:
    from agent.template import Template

Value = Callable[[float], Any]


class _Params(msgspec.Struct, forbid_unknown_fields=True):
    def check(self) -> None:
        """Cross-field rules msgspec cannot express; raise ValueError(field, message)."""


class Counter(_Params):
    start: int = 0
    step: int = 1

    def check(self) -> None:
        if self.step == 0:
            raise _Bad("step", "must not be 0")


class Uniform(_Params):
    min: int | float
    max: int | float
    decimals: int | None = None

    def check(self) -> None:
        if self.max < self.min:
            raise _Bad("max", f"must be >= min ({self.min})")
        if self.decimals is not None and not 0 <= self.decimals <= 12:
            raise _Bad("decimals", "must be between 0 and 12")


class Normal(_Params):
    mean: float
    stddev: float
    min: float | None = None
    max: float | None = None
    decimals: int | None = 2

    def check(self) -> None:
        if self.stddev < 0:
            raise _Bad("stddev", "must be >= 0")
        if self.min is not None and self.max is not None and self.max < self.min:
            raise _Bad("max", f"must be >= min ({self.min})")


class Choice(_Params):
    values: list[Any]
    weights: list[int | float] | None = None

    def check(self) -> None:
        if not self.values:
            raise _Bad("values", "must not be empty")
        if self.weights is not None:
            if len(self.weights) != len(self.values):
                raise _Bad("weights", f"must have one weight per value ({len(self.values)})")
            if any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
                raise _Bad("weights", "must be >= 0 with a positive sum")


class Timestamp(_Params):
    format: Literal["epoch_ms", "epoch_s", "iso"] = "epoch_ms"


class Bool(_Params):
    p_true: float = 0.5

    def check(self) -> None:
        if not 0 <= self.p_true <= 1:
            raise _Bad("p_true", "must be between 0 and 1")


class Sine(_Params):
    min: float
    max: float
    period: str | int | float
    noise: float = 0.0
    decimals: int | None = 2

    def check(self) -> None:
        if self.max < self.min:
            raise _Bad("max", f"must be >= min ({self.min})")
        if _duration(self.period, "period") <= 0:
            raise _Bad("period", "must be > 0")
        if self.noise < 0:
            raise _Bad("noise", "must be >= 0")


class RandomWalk(_Params):
    start: float
    step: float
    min: float
    max: float
    decimals: int | None = 2

    def check(self) -> None:
        if self.max < self.min:
            raise _Bad("max", f"must be >= min ({self.min})")
        if not self.min <= self.start <= self.max:
            raise _Bad("start", "must lie between min and max")
        if self.step < 0:
            raise _Bad("step", "must be >= 0")


class Decay(_Params):
    start: float
    half_life: str | int | float
    end: float = 0.0
    decimals: int | None = 2

    def check(self) -> None:
        if _duration(self.half_life, "half_life") <= 0:
            raise _Bad("half_life", "must be > 0")


class Empty(_Params):
    pass


class _Bad(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _duration(value: Any, name: str) -> int:
    from agent.template import parse_duration_ms

    try:
        return parse_duration_ms(value)
    except ValueError as e:
        raise _Bad(name, str(e)) from None


GENERATORS: dict[str, type[_Params] | None] = {
    "const": None,  # any JSON value, taken as is
    "counter": Counter,
    "uniform": Uniform,
    "normal": Normal,
    "choice": Choice,
    "timestamp": Timestamp,
    "bool": Bool,
    "sine": Sine,
    "random_walk": RandomWalk,
    "decay": Decay,
    "device_id": Empty,
    "uuid": Empty,
}


def check_generator_params(name: str, params: Any, path: str) -> Any:
    """Validate one generator's parameters; errors name ``path.field``."""
    from agent.template import convert

    typ = GENERATORS[name]
    if typ is None:
        try:
            orjson.dumps(params)
        except TypeError as e:
            raise ScenarioError(path, f"must be a JSON value: {e}") from None
        return params
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ScenarioError(path, f"parameters must be a mapping, got {type(params).__name__}")
    value = convert(params, typ, path)
    try:
        value.check()
    except _Bad as e:
        raise ScenarioError(f"{path}.{e.field}", str(e)) from None
    return value


# -- run time ------------------------------------------------------------------


def device_rng(seed: int | None, group: str, index: int) -> random.Random:
    """Independent, reproducible stream per device (blake2b, not Python's hash)."""
    base = seed if seed is not None else int.from_bytes(os.urandom(8), "big")
    digest = hashlib.blake2b(f"{base}/{group}/{index}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def _rounder(decimals: int | None) -> Callable[[float], Any]:
    if decimals is None:
        return lambda x: x
    return lambda x: round(x, decimals)


def _compile_field(name: str, p: Any, rng: random.Random, device_id: str) -> Value:
    if name == "const":
        return lambda now: p
    if name == "device_id":
        return lambda now: device_id
    if name == "counter":
        state = [p.start - p.step]

        def counter(now: float) -> int:
            state[0] += p.step
            return state[0]

        return counter
    if name == "uniform":
        if isinstance(p.min, int) and isinstance(p.max, int) and p.decimals is None:
            return lambda now: rng.randint(p.min, p.max)
        r = _rounder(2 if p.decimals is None else p.decimals)
        return lambda now: r(rng.uniform(p.min, p.max))
    if name == "normal":
        r = _rounder(p.decimals)
        lo = -math.inf if p.min is None else p.min
        hi = math.inf if p.max is None else p.max
        return lambda now: r(min(hi, max(lo, rng.gauss(p.mean, p.stddev))))
    if name == "choice":
        values, weights = p.values, p.weights
        if weights is None:
            return lambda now: rng.choice(values)
        cum: list[float] = []
        total = 0.0
        for w in weights:
            total += w
            cum.append(total)
        return lambda now: rng.choices(values, cum_weights=cum)[0]
    if name == "timestamp":
        if p.format == "epoch_ms":
            return lambda now: int(now * 1000)
        if p.format == "epoch_s":
            return lambda now: int(now)
        return lambda now: datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
    if name == "bool":
        return lambda now: rng.random() < p.p_true
    if name == "uuid":
        return lambda now: str(uuidlib.UUID(int=rng.getrandbits(128), version=4))
    if name == "sine":
        period = _duration(p.period, "period") / 1000
        mid, amp = (p.max + p.min) / 2, (p.max - p.min) / 2
        phase = rng.uniform(0, 2 * math.pi)  # devices are not in lockstep
        r = _rounder(p.decimals)

        def sine(now: float) -> float:
            v = mid + amp * math.sin(2 * math.pi * now / period + phase)
            if p.noise:
                v += rng.gauss(0, p.noise)
            return r(v)

        return sine
    if name == "random_walk":
        walk = [p.start]
        r = _rounder(p.decimals)

        def random_walk(now: float) -> float:
            walk[0] = min(p.max, max(p.min, walk[0] + rng.uniform(-p.step, p.step)))
            return r(walk[0])

        return random_walk
    if name == "decay":
        half = _duration(p.half_life, "half_life") / 1000
        t0: list[float] = []
        r = _rounder(p.decimals)

        def decay(now: float) -> float:
            if not t0:
                t0.append(now)
            return r(p.end + (p.start - p.end) * 0.5 ** ((now - t0[0]) / half))

        return decay
    raise AssertionError(f"generator {name} has no implementation")


class DevicePayload:
    """One device's payload: field closures evaluated in template order."""

    __slots__ = ("fields",)

    def __init__(self, fields: list[tuple[str, Value]]) -> None:
        self.fields = fields

    def next(self, now: float) -> dict[str, Any]:
        return {k: f(now) for k, f in self.fields}

    def encode(self, now: float) -> bytes:
        return orjson.dumps({k: f(now) for k, f in self.fields})


def compile_payload(
    template: Template, *, group: str, index: int, device_id: str, seed: int | None
) -> DevicePayload:
    rng = device_rng(seed, group, index)
    return DevicePayload(
        [
            (k, _compile_field(f.generator, f.params, rng, device_id))
            for k, f in template.payload.items()
        ]
    )
