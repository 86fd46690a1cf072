"""Payload generators: one seeded random stream per device, fields in order.

Each payload field names one generator (``temp: {uniform: {min: 18, max: 26}}``).
Parameters are validated once, when the template is parsed; at run time a
device's fields are plain closures over a per-device ``random.Random`` whose
seed derives from (group seed, group, index), so the same seed always gives
the same stream and two devices never share one.
"""

from __future__ import annotations

import _random
import bisect
import csv
import functools
import hashlib
import io
import itertools
import math
import os
import random
import string
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import CodeType
from typing import Any, Literal, Protocol

import msgspec
import orjson

from agent.errors import ScenarioError
from agent.spec import Field, convert, parse_duration_ms

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


class DeviceConst(_Params):
    """A value drawn once per device: from ``values`` (optionally weighted) or a range."""

    values: list[Any] | None = None
    weights: list[int | float] | None = None
    min: int | float | None = None
    max: int | float | None = None
    decimals: int | None = None

    def check(self) -> None:
        if self.values is not None:
            if self.min is not None or self.max is not None:
                raise _Bad("values", "give either values or min/max, not both")
            Choice(values=self.values, weights=self.weights).check()
        else:
            if self.min is None or self.max is None:
                raise _Bad("values", "give values, or both min and max")
            if self.weights is not None:
                raise _Bad("weights", "only with values")
            Uniform(min=self.min, max=self.max, decimals=self.decimals).check()


class Route(_Params):
    """Walk a polyline of [lat, lon] or [lat, lon, elevation] points at a speed."""

    points: list[list[float]]
    speed_kmh: float
    loop: bool = True
    start: Literal["random", "first"] = "random"
    decimals: int = 6

    def check(self) -> None:
        if len(self.points) < 2:
            raise _Bad("points", "must have at least 2 points")
        dims = {len(p) for p in self.points}
        if not dims <= {2, 3} or len(dims) != 1:
            raise _Bad("points", "every point must be [lat, lon] or [lat, lon, elevation]")
        for i, p in enumerate(self.points):
            if not (-90 <= p[0] <= 90 and -180 <= p[1] <= 180):
                raise _Bad(f"points[{i}]", "lat must be -90..90 and lon -180..180")
        if self.speed_kmh <= 0:
            raise _Bad("speed_kmh", "must be > 0")
        if not 0 <= self.decimals <= 12:
            raise _Bad("decimals", "must be between 0 and 12")


class Bulk(_Params):
    """``count`` samples of one generator sent together, ``spacing`` apart in time."""

    count: int
    of: Any
    spacing: str | int | float = 0

    def check(self) -> None:
        if not 1 <= self.count <= 10_000:
            raise _Bad("count", "must be between 1 and 10000")
        _duration(self.spacing, "spacing")


class Replay(_Params):
    """Rows replayed from a CSV/JSONL file (inlined as ``rows`` when the scenario loads)."""

    rows: list[Any] | None = None
    file: str | None = None
    speed: float = 1.0
    loop: bool = True
    field: str | None = None
    time_field: str | None = None

    def check(self) -> None:
        if self.file is not None:
            raise _Bad(
                "file",
                "is only read from a scenario file (mockmock run, template preview); "
                "send the rows inline as rows: [...]",
            )
        if not self.rows:
            raise _Bad("rows", "must not be empty")
        if self.speed <= 0:
            raise _Bad("speed", "must be > 0")
        for i, row in enumerate(self.rows):
            if (self.field or self.time_field) and not isinstance(row, dict):
                raise _Bad(f"rows[{i}]", "must be an object when field or time_field is set")
            if self.field and self.field not in row:
                raise _Bad(f"rows[{i}]", f"has no field {self.field!r}")
            if self.time_field:
                if self.time_field not in row:
                    raise _Bad(f"rows[{i}]", f"has no time field {self.time_field!r}")
                try:
                    _row_time(row[self.time_field])
                except ValueError:
                    raise _Bad(
                        f"rows[{i}].{self.time_field}",
                        "must be seconds (a number) or an ISO 8601 time",
                    ) from None


class _Bad(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _duration(value: Any, name: str) -> int:
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
    "device_const": DeviceConst,
    "route": Route,
    "bulk": Bulk,
    "object": None,  # nested fields: {name: generator spec, ...}
    "replay": Replay,
    "format": None,  # a string template: "sensor-{device_id}", "{temp:.1f} C"
    "status": Empty,  # the device's status now (e.g. in a heartbeat or event stream)
    "device_field": None,  # a column of the device's row in `identities` (CSV/JSONL)
}
# What a format string may name besides the other top-level fields of its message.
FORMAT_NAMES = frozenset({"device_id", "group", "index", "status"})
# Generators that read the clock as "the device's time": clock faults shift them.
CLOCK_GENERATORS = frozenset({"timestamp"})


@dataclass(frozen=True)
class FormatSpec:
    text: str
    refs: tuple[str, ...]  # the placeholders it names, in order


def parse_format(text: Any, path: str) -> FormatSpec:
    """``format: "id-{device_id}-{temp:.1f}"``: Python format syntax; ``{{`` is a brace."""
    if not isinstance(text, str):
        raise ScenarioError(path, "must be a string like 'sensor-{device_id}'")
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as e:
        raise ScenarioError(path, f"bad placeholder: {e}") from None
    refs: list[str] = []
    for _, name, spec, conv in parts:
        if name is None:
            continue
        if not name.isidentifier():
            raise ScenarioError(path, f"placeholder {{{name}}} must name a field")
        if conv or (spec and "{" in spec):
            raise ScenarioError(path, f"placeholder {{{name}}}: no !conversions or nesting")
        refs.append(name)
    return FormatSpec(text, tuple(dict.fromkeys(refs)))


def parse_field(raw: Any, path: str) -> Field:
    """One payload field: ``{generator: params}``, or a bare value (a constant)."""
    if not isinstance(raw, dict):
        # Scalars and lists are constants: `fw: "1.4.2"` is `fw: {const: "1.4.2"}`.
        return Field("const", check_generator_params("const", raw, path))
    if len(raw) != 1:
        raise ScenarioError(
            path, f"must name exactly one generator, got {len(raw)} keys ({', '.join(raw)})"
        )
    ((name, params),) = raw.items()
    if name not in GENERATORS:
        known = ", ".join(sorted(GENERATORS))
        raise ScenarioError(path, f"unknown generator {name!r} (known: {known})")
    return Field(name, check_generator_params(name, params, f"{path}.{name}"))


def check_format_refs(fields: dict[str, Field], path: str) -> None:
    """Every format field of a message names only its siblings or the device's own
    names (a field that is itself a format, or absent, cannot be named)."""
    plain = {k for k, f in fields.items() if f.generator != "format"}
    for k, f in fields.items():
        if f.generator != "format":
            continue
        for ref in f.params.refs:
            if ref not in plain and ref not in FORMAT_NAMES:
                known = ", ".join(sorted(plain | FORMAT_NAMES))
                raise ScenarioError(
                    f"{path}.{k}.format", f"unknown placeholder {{{ref}}} (known: {known})"
                )


@dataclass(frozen=True)
class BulkSpec:
    count: int
    of: Any  # spec.Field
    spacing_s: float


def _row_time(value: Any) -> float:
    """Seconds of a replayed row's time field: a number, or an ISO 8601 string."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            d = datetime.fromisoformat(value)
            return (d if d.tzinfo else d.replace(tzinfo=UTC)).timestamp()
    raise ValueError(value)


def check_generator_params(name: str, params: Any, path: str) -> Any:
    """Validate one generator's parameters; errors name ``path.field``."""

    typ = GENERATORS[name]
    if name == "format":
        return parse_format(params, path)
    if name == "device_field":
        if not isinstance(params, str) or not params:
            raise ScenarioError(path, "must name a column of identities, e.g. device_field: serial")
        return params
    if name == "object":
        if not isinstance(params, dict) or not params:
            raise ScenarioError(path, "must map field names to generators, e.g. {v: {counter: {}}}")
        return {k: parse_field(v, f"{path}.{k}") for k, v in params.items()}
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
    if isinstance(value, Bulk):
        of = parse_field(value.of, f"{path}.of")
        return BulkSpec(value.count, of, _duration(value.spacing, "spacing") / 1000)
    return value


def bounds(field: Any) -> tuple[float, float, bool] | None:
    """(low, high, integers?) a field's values stay within, or None when unbounded.

    What out-of-range faults step outside of; a normal without min/max counts
    as bounded by mean ± 4 standard deviations (beyond that is an outlier).
    """
    p = field.params
    name = field.generator
    if name == "uniform":
        return (p.min, p.max, isinstance(p.min, int) and isinstance(p.max, int) and not p.decimals)
    if name == "normal":
        lo = p.mean - 4 * p.stddev if p.min is None else p.min
        hi = p.mean + 4 * p.stddev if p.max is None else p.max
        return (lo, hi, False)
    if name in ("sine", "random_walk"):
        return (p.min, p.max, False)
    if name == "decay":
        return (min(p.start, p.end), max(p.start, p.end), False)
    if name == "device_const" and p.values is None:
        ints = isinstance(p.min, int) and isinstance(p.max, int) and p.decimals is None
        return (p.min, p.max, ints)
    return None


MAX_REPLAY_BYTES = 16 * 2**20
MAX_REPLAY_ROWS = 200_000


def _scalar(text: str) -> Any:
    """CSV cells are text; numbers become numbers, empty cells null."""
    if text == "":
        return None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def read_replay_file(path: Path) -> list[Any]:
    """Rows of a CSV (header line, one object per row) or JSONL (one JSON value per line)
    file; raises ValueError with a message fit for a ScenarioError."""
    try:
        size = path.stat().st_size
        if size > MAX_REPLAY_BYTES:
            raise ValueError(
                f"{path.name} is {size} bytes; at most {MAX_REPLAY_BYTES} are replayed"
            )
        data = path.read_bytes()
    except OSError as e:
        raise ValueError(f"cannot read {str(path)!r}: {e.strerror or e}") from None
    rows: list[Any] = []
    suffix = path.suffix.lower()
    if suffix == ".csv":
        try:
            reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig")))
            for rec in reader:
                rows.append({k: _scalar(v or "") for k, v in rec.items() if k is not None})
        except (UnicodeDecodeError, csv.Error) as e:
            raise ValueError(f"{path.name}: not a readable CSV file: {e}") from None
    elif suffix in (".jsonl", ".ndjson", ".json"):
        for n, line in enumerate(data.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(orjson.loads(line))
            except orjson.JSONDecodeError as e:
                raise ValueError(f"{path.name} line {n}: invalid JSON: {e}") from None
    else:
        raise ValueError(f"{path.name}: must end in .csv or .jsonl")
    if not rows:
        raise ValueError(f"{path.name} has no rows")
    if len(rows) > MAX_REPLAY_ROWS:
        raise ValueError(f"{path.name} has {len(rows)} rows; at most {MAX_REPLAY_ROWS}")
    return rows


# -- run time ------------------------------------------------------------------


def device_rng(seed: int | None, group: str, index: int, stream: str = "") -> random.Random:
    """Independent, reproducible stream per device (blake2b, not Python's hash).

    ``stream`` names a separate purpose (faults, statuses): switching a fault on
    must not change the payload values a seed gives.
    """
    base = seed if seed is not None else int.from_bytes(os.urandom(8), "big")
    key = f"{base}/{group}/{index}" + (f"/{stream}" if stream else "")
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return DeviceRandom(int.from_bytes(digest, "big"))


class DeviceRandom(_random.Random):
    """random.Random without an instance dict: the same Mersenne Twister, seeded the
    same way from an int, with random.Random's own methods (so the same values). A
    device has three or more of these; random.Random's dict (for ``gauss_next``)
    would be ~340 bytes each."""

    __slots__ = ("gauss_next",)

    def __init__(self, seed: int) -> None:
        _random.Random.seed(self, seed)  # what random.Random.seed does with an int
        self.gauss_next = None


# Every method of random.Random but those that reach its base through super() (seeding
# and state), which DeviceRandom does not need or does itself.
for _name, _method in vars(random.Random).items():
    if (
        callable(_method)
        and not _name.startswith("__")
        and _name not in ("seed", "getstate", "setstate")
    ):
        setattr(DeviceRandom, _name, _method)


def _rounder(decimals: int | None) -> Callable[[float], Any]:
    if decimals is None:
        return lambda x: x
    return lambda x: round(x, decimals)


class DeviceNames:
    """What a device's format strings and ``status`` fields read: its own names, and its
    status now (a cell the engine updates on every transition)."""

    __slots__ = ("base", "row", "status")

    def __init__(
        self, device_id: str, group: str = "", index: int = 0, row: dict[str, Any] | None = None
    ) -> None:
        self.base = {"device_id": device_id, "group": group, "index": index}
        self.status = [""]
        self.row = row or {}


class _Format:
    """A format field: rendered from the other values of its message (see DevicePayload)."""

    __slots__ = ("names", "text")

    def __init__(self, text: str, names: DeviceNames) -> None:
        self.text = text
        self.names = names

    def render(self, values: dict[str, Any]) -> str:
        n = self.names
        return self.text.format_map({**n.base, "status": n.status[0], **values})

    def __call__(self, now: float) -> str:  # alone (e.g. nested): only the device's names
        return self.render({})


# The closures of the hottest generators, each made by a small factory and registered
# with the statements that compute its value inline: a payload's encoder is then one
# generated function that evaluates its fields in order without a call per field
# (see _generated). In a statement, {out} is the field's value (and prefixes its
# temporaries), every other name one of the function's bound arguments. They are bound
# as defaults, not closed over: a tuple slot instead of a cell each, on a dozen
# functions per device.
_INLINE: dict[CodeType, str] = {}


def _inlined(stmt: str) -> Callable[[Callable[..., Value]], Callable[..., Value]]:
    def register(factory: Callable[..., Value]) -> Callable[..., Value]:
        _INLINE[_inner_code(factory)] = stmt
        return factory

    return register


def _inner_code(factory: Callable[..., Value]) -> CodeType:
    """The code of the one function a factory makes."""
    (code,) = [c for c in factory.__code__.co_consts if isinstance(c, CodeType)]
    return code


@_inlined("{out} = {value}")
def _const(value: Any) -> Value:
    return lambda now, value=value: value


@_inlined("{out} = {cell}[0]")
def _cell(cell: list[Any]) -> Value:
    return lambda now, cell=cell: cell[0]


@_inlined("{state}[0] += {step}\n{out} = {state}[0]")
def _counter(state: list[int], step: int) -> Value:
    def counter(now: float, state: list[int] = state, step: int = step) -> int:
        state[0] += step
        return state[0]

    return counter


@_inlined("{out} = round({lo} + {span} * {rnd}(), {d})")
def _uniform(lo: float, span: float, rnd: Callable[[], float], d: int) -> Value:
    return lambda now, lo=lo, span=span, rnd=rnd, d=d: round(lo + span * rnd(), d)


@_inlined("{out} = {rng}.randint({lo}, {hi})")
def _randint(rng: random.Random, lo: int, hi: int) -> Value:
    return lambda now, rng=rng, lo=lo, hi=hi: rng.randint(lo, hi)


# random.Random.gauss, statement for statement (Python 3.11-3.13), on the same rng: the
# same draws and the same spare value for the next call (checked at import, below).
_GAUSS = """{out}_z = {rng}.gauss_next
{rng}.gauss_next = None
if {out}_z is None:
    {out}_x = {rng}.random() * TWOPI
    {out}_g = sqrt(-2.0 * log(1.0 - {rng}.random()))
    {out}_z = cos({out}_x) * {out}_g
    {rng}.gauss_next = sin({out}_x) * {out}_g
"""


@_inlined(_GAUSS + "{out} = {mean} + {out}_z * {sd}")
def _gauss(rng: random.Random, mean: float, sd: float) -> Value:
    return lambda now, rng=rng, mean=mean, sd=sd: rng.gauss(mean, sd)


@_inlined(_GAUSS + "{out} = round({mean} + {out}_z * {sd}, {d})")
def _gauss_round(rng: random.Random, mean: float, sd: float, d: int) -> Value:
    return lambda now, rng=rng, mean=mean, sd=sd, d=d: round(rng.gauss(mean, sd), d)


@_inlined("{out} = {rng}.choice({values})")
def _choice(rng: random.Random, values: list[Any]) -> Value:
    return lambda now, rng=rng, values=values: rng.choice(values)


@_inlined("{out} = {values}[bisect({cum}, {rnd}() * {total}, 0, {last})]")
def _weighted(
    values: list[Any], cum: list[float], rnd: Callable[[], float], total: float, last: int
) -> Value:
    return lambda now, values=values, cum=cum, rnd=rnd, total=total, last=last: values[
        bisect.bisect(cum, rnd() * total, 0, last)
    ]


@_inlined("{out} = int((now + {c}[0]) * 1000)")
def _epoch_ms(c: list[float]) -> Value:
    return lambda now, c=c: int((now + c[0]) * 1000)


@_inlined("{out} = int(now + {c}[0])")
def _epoch_s(c: list[float]) -> Value:
    return lambda now, c=c: int(now + c[0])


@_inlined("{out} = {rnd}() < {p_true}")
def _bool(rnd: Callable[[], float], p_true: float) -> Value:
    return lambda now, rnd=rnd, p_true=p_true: rnd() < p_true


@functools.lru_cache(maxsize=256)
def _cumulative(weights: tuple[float, ...]) -> tuple[list[float], float]:
    """Running sums of a choice's weights and their total: one list for every device
    (only read, by bisect), not one each."""
    cum: list[float] = []
    total = 0.0
    for w in weights:
        total += w
        cum.append(total)
    return cum, total


def _compile_field(
    name: str,
    p: Any,
    rng: random.Random,
    device_id: str,
    clock: list[float] | None = None,
    names: DeviceNames | None = None,
) -> Value:
    if name == "format":
        return _Format(p.text, names or DeviceNames(device_id))
    if name == "status":
        return _cell((names or DeviceNames(device_id)).status)
    if name == "device_field":
        return _const((names.row if names is not None else {}).get(p))
    if name == "const":
        return _const(p)
    if name == "device_id":
        return _const(device_id)
    if name == "counter":
        return _counter([p.start - p.step], p.step)
    if name == "uniform":
        if isinstance(p.min, int) and isinstance(p.max, int) and p.decimals is None:
            return _randint(rng, p.min, p.max)
        # Inlined rng.uniform (same stream): this is the hottest generator.
        return _uniform(p.min, p.max - p.min, rng.random, 2 if p.decimals is None else p.decimals)
    if name == "normal":
        r = _rounder(p.decimals)
        mean, sd = p.mean, p.stddev
        if p.min is None and p.max is None:
            if type(rng).gauss is not random.Random.gauss:
                gauss = rng.gauss
                return lambda now: r(gauss(mean, sd))
            if p.decimals is None:
                return _gauss(rng, mean, sd)
            return _gauss_round(rng, mean, sd, p.decimals)
        gauss = rng.gauss
        lo = -math.inf if p.min is None else p.min
        hi = math.inf if p.max is None else p.max
        return lambda now: r(min(hi, max(lo, gauss(mean, sd))))
    if name == "choice":
        values, weights = p.values, p.weights
        if weights is None:
            return _choice(rng, values)
        cum, total = _cumulative(tuple(weights))
        # What rng.choices does, without its per-call list and checks: same stream.
        return _weighted(values, cum, rng.random, total, len(values) - 1)
    if name == "timestamp":
        c = clock if clock is not None else [0.0]
        if p.format == "epoch_ms":
            return _epoch_ms(c)
        if p.format == "epoch_s":
            return _epoch_s(c)
        return lambda now: datetime.fromtimestamp(now + c[0], UTC).isoformat(
            timespec="milliseconds"
        )
    if name == "bool":
        return _bool(rng.random, p.p_true)
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
    if name == "device_const":
        if p.values is not None:
            v = rng.choices(p.values, weights=p.weights)[0] if p.weights else rng.choice(p.values)
        elif isinstance(p.min, int) and isinstance(p.max, int) and p.decimals is None:
            v = rng.randint(p.min, p.max)
        else:
            v = round(rng.uniform(p.min, p.max), 2 if p.decimals is None else p.decimals)
        return lambda now: v
    if name == "route":
        return _route(p, rng)
    if name == "bulk":
        inner = _compile_field(p.of.generator, p.of.params, rng, device_id, clock, names)
        count, spacing = p.count, p.spacing_s
        if not spacing:
            return lambda now: [inner(now) for _ in range(count)]
        # Samples taken `spacing` apart, the last one now: a device that buffers readings.
        return lambda now: [inner(now - (count - 1 - i) * spacing) for i in range(count)]
    if name == "object":
        parts = [
            (k, _compile_field(f.generator, f.params, rng, device_id, clock, names))
            for k, f in p.items()
        ]
        return lambda now: {k: f(now) for k, f in parts}
    if name == "replay":
        return _replay(p)
    raise AssertionError(f"generator {name} has no implementation")


_EARTH_M = 6_371_000.0


def _haversine_m(a: list[float], b: list[float]) -> float:
    la1, lo1, la2, lo2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = (
        math.sin((la2 - la1) / 2) ** 2
        + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    )
    return 2 * _EARTH_M * math.asin(min(1.0, math.sqrt(h)))


def _bearing(a: list[float], b: list[float]) -> float:
    la1, lo1, la2, lo2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    y = math.sin(lo2 - lo1) * math.cos(la2)
    x = math.cos(la1) * math.sin(la2) - math.sin(la1) * math.cos(la2) * math.cos(lo2 - lo1)
    return (math.degrees(math.atan2(y, x)) + 360) % 360


def _route(p: Route, rng: random.Random) -> Value:
    pts = [list(x) for x in p.points]
    if p.loop and pts[0] != pts[-1]:
        pts.append(pts[0])  # a loop drives back to where it started
    cum = [0.0]
    for a, b in itertools.pairwise(pts):
        cum.append(cum[-1] + _haversine_m(a, b))
    total = cum[-1]
    speed = p.speed_kmh / 3.6  # m/s
    offset = rng.uniform(0, total) if p.start == "random" else 0.0
    elevation = len(pts[0]) == 3
    dec = p.decimals
    t0: list[float] = []

    def route(now: float) -> dict[str, Any]:
        if not t0:
            t0.append(now)
        dist = offset + speed * (now - t0[0])
        moving = True
        if total <= 0:
            dist, moving = 0.0, False
        elif p.loop:
            dist %= total
        elif dist >= total:
            dist, moving = total, False
        # Segment i spans cum[i]..cum[i+1]; a linear scan is fine for hand-made routes.
        i = 0
        while i < len(cum) - 2 and cum[i + 1] < dist:
            i += 1
        a, b = pts[i], pts[i + 1]
        seg = cum[i + 1] - cum[i]
        f = (dist - cum[i]) / seg if seg > 0 else 0.0
        out: dict[str, Any] = {
            "lat": round(a[0] + (b[0] - a[0]) * f, dec),
            "lon": round(a[1] + (b[1] - a[1]) * f, dec),
        }
        if elevation:
            out["elevation"] = round(a[2] + (b[2] - a[2]) * f, 1)
        out["speed_kmh"] = p.speed_kmh if moving else 0.0
        out["heading"] = round(_bearing(a, b), 1)
        return out

    return route


def _replay(p: Replay) -> Value:
    rows = p.rows or []
    pick = (lambda r: r[p.field]) if p.field else (lambda r: r)
    n = len(rows)
    if not p.time_field:
        pos = [0]

        def replay_next(now: float) -> Any:
            i = pos[0]
            if i >= n:
                i = 0 if p.loop else n - 1
            pos[0] = i + 1
            return pick(rows[i])

        return replay_next
    times = [_row_time(r[p.time_field]) for r in rows]
    first = times[0]
    rel = [t - first for t in times]
    span = rel[-1]
    speed = p.speed
    t0: list[float] = []

    def replay_timed(now: float) -> Any:
        if not t0:
            t0.append(now)
        at = (now - t0[0]) * speed
        if span > 0 and p.loop:
            at %= span
        # The last row whose time has come (rows are replayed in file order).
        i = bisect.bisect_right(rel, at) - 1
        return pick(rows[max(0, min(i, n - 1))])

    return replay_timed


_GENERATED: dict[tuple[Any, ...], Callable[..., Any]] = {}
_GENERATED_NS = {
    "bisect": bisect.bisect,
    "TWOPI": math.tau,
    "sqrt": math.sqrt,
    "log": math.log,
    "cos": math.cos,
    "sin": math.sin,
}


def _gauss_inline_matches() -> bool:
    """Whether _GAUSS still is this Python's random.Random.gauss, on a few hundred draws."""
    lines = (_GAUSS.format(out="x", rng="rng") + "return mean + x_z * sd").splitlines()
    src = "def g(rng, mean, sd):\n" + "".join(f"    {line}\n" for line in lines)
    ns: dict[str, Any] = dict(_GENERATED_NS)
    exec(compile(src, "<gauss check>", "exec"), ns)
    a, b = random.Random(5), random.Random(5)
    return all(ns["g"](a, 1.0, 2.0) == b.gauss(1.0, 2.0) for _ in range(256))


if not _gauss_inline_matches():  # a Python whose gauss differs: call it instead
    for _factory in (_gauss, _gauss_round):
        del _INLINE[_inner_code(_factory)]


def _generated(
    keys: tuple[str, ...], codes: tuple[Any, ...], dumps: Callable[[Any], bytes] | None
) -> Callable[..., Any]:
    """Compile, once per field list, the function that computes a message: the
    registered generators (_INLINE) inline, any other field called, in template
    order, and the dict built in one display. What each field's function held is
    its bindings (``_bindings``: the same objects, state lists and the rng, so a
    counter shared by two statuses still counts once).

    ``dumps`` given: ``make(*bindings)`` returning the device's ``encode(now)`` (bytes;
    the bindings in its cells, for the hottest path). None: ``values(now, bindings)``
    returning the dict, one function for every device."""
    key = (dumps, keys, codes)
    fn = _GENERATED.get(key)
    if fn is None:
        params: list[str] = []
        lines: list[str] = []
        for i, code in enumerate(codes):
            stmt = _INLINE.get(code)
            if stmt is None:
                params.append(f"f{i}")
                lines.append(f"x{i} = f{i}(now)")
                continue
            names = {v: f"{v}_{i}" for v in code.co_varnames[1 : code.co_argcount]}
            params.extend(names.values())
            lines.extend(stmt.format(out=f"x{i}", **names).splitlines())
        body = "{" + ", ".join(f"{k!r}: x{i}" for i, k in enumerate(keys)) + "}"
        if dumps is None:
            src = (
                "def make(now, b):\n"
                f"    {', '.join(params)}, = b\n"
                + "".join(f"    {line}\n" for line in lines)
                + f"    return {body}\n"
            )
        else:
            src = (
                f"def make({', '.join(params)}):\n"
                "    def encode(now):\n"
                + "".join(f"        {line}\n" for line in lines)
                + f"        return dumps({body})\n"
                "    return encode\n"
            )
        ns: dict[str, Any] = {"dumps": dumps, **_GENERATED_NS}
        exec(compile(src, f"<payload {len(keys)} fields>", "exec"), ns)
        fn = _GENERATED[key] = ns["make"]
    return fn


def _bindings(fns: tuple[Value, ...]) -> tuple[Any, ...]:
    """What these field functions hold, in _generated's parameter order."""
    out: list[Any] = []
    for f in fns:
        code = getattr(f, "__code__", None)
        if code in _INLINE:
            out.extend(f.__defaults__)  # type: ignore[union-attr]
        else:
            out.append(f)
    return tuple(out)


_KEYS: dict[tuple[str, ...], tuple[str, ...]] = {}
_CODES: dict[tuple[Any, ...], tuple[Any, ...]] = {}


class DevicePayload:
    """One device's payload: its fields evaluated in template order.

    ``clock`` is a one-element cell the device's timestamp fields add to the time:
    the engine sets it for clock skew/drift faults without recompiling anything.
    ``dumps`` turns the values into bytes (JSON unless the template's ``encoding``
    says otherwise). Format fields are rendered after the others, from their values.

    Without format fields a payload keeps no function per field, only their bindings
    and the message function shared by every device with the same field list.
    """

    __slots__ = ("binds", "clock", "codes", "dumps", "encode", "fns", "formats", "keys", "make")

    def __init__(
        self,
        fields: list[tuple[str, Value]],
        clock: list[float] | None = None,
        dumps: Callable[[Any], bytes] = orjson.dumps,
    ) -> None:
        # Field names, codes and the message function are shared by every device with
        # the same fields; per device there is one tuple (bindings or functions).
        keys = tuple(k for k, _ in fields)
        self.keys = _KEYS.setdefault(keys, keys)
        fns = tuple(f for _, f in fields)
        self.clock = clock if clock is not None else [0.0]
        self.dumps = dumps
        self.formats = tuple((k, f) for k, f in fields if isinstance(f, _Format))
        if self.formats or not 0 < len(fns) <= 200:
            self.fns, self.binds, self.make = fns, (), None
        else:
            codes = tuple(
                c if (c := getattr(f, "__code__", None)) in _INLINE else None for f in fns
            )
            self.codes = _CODES.setdefault(codes, codes)
            self.fns, self.binds = (), _bindings(fns)
            self.make = _generated(self.keys, self.codes, None)
        # ``encode`` is made on first use (__getattr__): a payload that faults always
        # send through next() never pays for an encoder.

    def __getattr__(self, name: str) -> Any:
        if name != "encode":
            raise AttributeError(name)
        if self.make is None:
            encode: Callable[[float], bytes] = self._encode
        else:
            encode = _generated(self.keys, self.codes, self.dumps)(*self.binds)
        self.encode = encode
        return encode

    def next(self, now: float) -> dict[str, Any]:
        make = self.make
        if make is not None:
            return make(now, self.binds)  # type: ignore[no-any-return]
        if not self.formats:
            return {k: f(now) for k, f in zip(self.keys, self.fns, strict=False)}
        fmt = dict(self.formats)
        values = {
            k: None if k in fmt else f(now) for k, f in zip(self.keys, self.fns, strict=False)
        }  # keeps the order
        for k, f in self.formats:
            values[k] = f.render(values)
        return values

    def _encode(self, now: float) -> bytes:
        return self.dumps(self.next(now))


class _HasPayload(Protocol):
    payload: dict[str, Field]


def compile_payload(
    template: _HasPayload, *, group: str, index: int, device_id: str, seed: int | None
) -> DevicePayload:
    rng = device_rng(seed, group, index)
    return compile_fields(template.payload, rng=rng, device_id=device_id)


def compile_fields(
    fields: dict[str, Field],
    *,
    rng: random.Random,
    device_id: str,
    clock: list[float] | None = None,
    cache: dict[int, Value] | None = None,
    names: DeviceNames | None = None,
    dumps: Callable[[Any], bytes] = orjson.dumps,
) -> DevicePayload:
    """Compile one device's fields. ``cache`` (by field object) lets a device's
    statuses share the closures of the fields they do not change, so a counter
    keeps counting across a status change."""
    clock = clock if clock is not None else [0.0]
    cache = cache if cache is not None else {}
    out = []
    for k, f in fields.items():
        fn = cache.get(id(f))
        if fn is None:
            fn = cache[id(f)] = _compile_field(f.generator, f.params, rng, device_id, clock, names)
        out.append((k, fn))
    return DevicePayload(out, clock, dumps)


def uses_names(fields: dict[str, Field]) -> bool:
    """Whether any field (nested too) reads the device's names or status."""

    def walk(f: Any) -> bool:
        if f.generator in ("format", "status", "device_field"):
            return True
        if f.generator == "object":
            return any(walk(x) for x in f.params.values())
        return f.generator == "bulk" and walk(f.params.of)

    return any(walk(f) for f in fields.values())


def sample_values(fields: dict[str, Field]) -> dict[str, Any]:
    """One message of ``fields`` from a fixed seed: what load-time checks encode."""
    return compile_fields(fields, rng=random.Random(0), device_id="sample").next(1.8e9)
