"""Faults as first-class settings: their schema and the pure per-message damage.

Each fault has a ``rate`` (probability per send) and a ``devices`` share (the
seeded fraction of the fleet that has the fault at all), so "2 % of devices
drift, and those send a malformed message once in a thousand" is two numbers.
Value faults (out of range, missing field, wrong type) and encoding faults
(malformed JSON) are plain functions of a payload and a random stream, tested
without a broker; connection faults (silent, TCP drop, reconnect storm) are
scheduled by the engine and carried out by the transport.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import msgspec

from agent.errors import ScenarioError
from agent.spec import convert, parse_duration_ms

FAULT_NAMES = (
    "out_of_range",
    "missing_field",
    "wrong_type",
    "malformed_json",
    "duplicate",
    "out_of_order",
    "clock_skew",
    "clock_drift",
    "silent",
    "tcp_drop",
    "reconnect_storm",
)

Rate = float


class _Fault(msgspec.Struct, forbid_unknown_fields=True):
    rate: float = 0.01
    devices: float = 1.0


class _FieldFault(_Fault, forbid_unknown_fields=True):
    fields: list[str] | None = None


class _ClockSkew(msgspec.Struct, forbid_unknown_fields=True):
    offset: str | int | float
    devices: float = 1.0


class _ClockDrift(msgspec.Struct, forbid_unknown_fields=True):
    ppm: float
    devices: float = 1.0


class _Silent(_Fault, forbid_unknown_fields=True):
    duration: str | int | float = "30s"


class _TcpDrop(_Fault, forbid_unknown_fields=True):
    reconnect_after: str | int | float = "5s"


class _Storm(msgspec.Struct, forbid_unknown_fields=True):
    rate: float  # drops per second across the group
    reconnect_after: str | int | float = "1s"
    start_after: str | int | float = 0
    duration: str | int | float | None = None


class _FaultsDoc(msgspec.Struct, forbid_unknown_fields=True):
    out_of_range: _FieldFault | None = None
    missing_field: _FieldFault | None = None
    wrong_type: _FieldFault | None = None
    malformed_json: _Fault | None = None
    duplicate: _Fault | None = None
    out_of_order: _Fault | None = None
    clock_skew: _ClockSkew | None = None
    clock_drift: _ClockDrift | None = None
    silent: _Silent | None = None
    tcp_drop: _TcpDrop | None = None
    reconnect_storm: _Storm | None = None


@dataclass(frozen=True)
class FieldFault:
    rate: float
    devices: float
    fields: tuple[str, ...] | None  # None: any field (out_of_range: any bounded field)


@dataclass(frozen=True)
class Faults:
    """Validated fault settings of a template (all optional)."""

    out_of_range: FieldFault | None = None
    missing_field: FieldFault | None = None
    wrong_type: FieldFault | None = None
    malformed_json: tuple[float, float] | None = None  # (rate, devices)
    duplicate: tuple[float, float] | None = None
    out_of_order: tuple[float, float] | None = None
    clock_skew: tuple[float, float] | None = None  # (offset seconds, devices)
    clock_drift: tuple[float, float] | None = None  # (ppm, devices)
    silent: tuple[float, float, float] | None = None  # (rate, devices, duration s)
    tcp_drop: tuple[float, float, float] | None = None  # (rate, devices, reconnect s)
    # (drops per second, reconnect s, start after s, duration s or None)
    reconnect_storm: tuple[float, float, float, float | None] | None = None

    @property
    def any(self) -> bool:
        return any(getattr(self, n) is not None for n in FAULT_NAMES)


def _share(value: float, path: str) -> float:
    if not 0 <= value <= 1:
        raise ScenarioError(path, f"must be between 0 and 1, got {value}")
    return float(value)


def _seconds(value: Any, path: str, *, signed: bool = False, positive: bool = False) -> float:
    sign = 1
    if signed and isinstance(value, str) and value.strip()[:1] in "+-":
        sign = -1 if value.strip()[0] == "-" else 1
        value = value.strip()[1:]
    elif signed and isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        sign, value = -1, -value
    try:
        ms = parse_duration_ms(value)
    except ValueError as e:
        raise ScenarioError(path, str(e)) from None
    if positive and ms <= 0:
        raise ScenarioError(path, "must be > 0")
    return sign * ms / 1000


def _fields(
    doc: _FieldFault, path: str, known: dict[str, Any], bounded: set[str] | None
) -> FieldFault:
    fields = None
    if doc.fields is not None:
        if not doc.fields:
            raise ScenarioError(f"{path}.fields", "must name at least one field (or be left out)")
        for i, name in enumerate(doc.fields):
            if name not in known:
                raise ScenarioError(f"{path}.fields[{i}]", f"unknown payload field {name!r}")
            if bounded is not None and name not in bounded:
                raise ScenarioError(
                    f"{path}.fields[{i}]",
                    f"field {name!r} has no bounds (use uniform, normal with min/max, sine, "
                    "random_walk or device_const with min/max)",
                )
        fields = tuple(doc.fields)
    elif bounded is not None and not bounded:
        raise ScenarioError(path, "no payload field has bounds to leave")
    return FieldFault(
        _share(doc.rate, f"{path}.rate"), _share(doc.devices, f"{path}.devices"), fields
    )


def parse_faults(raw: Any, path: str, payload: dict[str, Any], bounded: set[str]) -> Faults:
    """Validate ``faults:``; ``payload`` are the template's fields, ``bounded`` those
    with numeric bounds (the only ones out_of_range can push out)."""

    if raw is None:
        return Faults()
    if not isinstance(raw, dict):
        raise ScenarioError(path, "must be a mapping of fault name to settings")
    for name in raw:
        if name not in FAULT_NAMES:
            known = ", ".join(FAULT_NAMES)
            raise ScenarioError(f"{path}.{name}", f"unknown fault (known: {known})")
    doc = convert(raw, _FaultsDoc, path)
    out: dict[str, Any] = {}
    if doc.out_of_range:
        out["out_of_range"] = _fields(doc.out_of_range, f"{path}.out_of_range", payload, bounded)
    if doc.missing_field:
        out["missing_field"] = _fields(doc.missing_field, f"{path}.missing_field", payload, None)
    if doc.wrong_type:
        out["wrong_type"] = _fields(doc.wrong_type, f"{path}.wrong_type", payload, None)
    for name in ("malformed_json", "duplicate", "out_of_order"):
        f = getattr(doc, name)
        if f is not None:
            p = f"{path}.{name}"
            out[name] = (_share(f.rate, f"{p}.rate"), _share(f.devices, f"{p}.devices"))
    if doc.clock_skew:
        p = f"{path}.clock_skew"
        offset = _seconds(doc.clock_skew.offset, f"{p}.offset", signed=True)
        out["clock_skew"] = (offset, _share(doc.clock_skew.devices, f"{p}.devices"))
    if doc.clock_drift:
        p = f"{path}.clock_drift"
        if not -1e6 < doc.clock_drift.ppm < 1e6:
            raise ScenarioError(f"{p}.ppm", "must be between -1000000 and 1000000")
        out["clock_drift"] = (doc.clock_drift.ppm, _share(doc.clock_drift.devices, f"{p}.devices"))
    if doc.silent:
        p = f"{path}.silent"
        out["silent"] = (
            _share(doc.silent.rate, f"{p}.rate"),
            _share(doc.silent.devices, f"{p}.devices"),
            _seconds(doc.silent.duration, f"{p}.duration", positive=True),
        )
    if doc.tcp_drop:
        p = f"{path}.tcp_drop"
        out["tcp_drop"] = (
            _share(doc.tcp_drop.rate, f"{p}.rate"),
            _share(doc.tcp_drop.devices, f"{p}.devices"),
            _seconds(doc.tcp_drop.reconnect_after, f"{p}.reconnect_after"),
        )
    if doc.reconnect_storm:
        p = f"{path}.reconnect_storm"
        s = doc.reconnect_storm
        if not 0 < s.rate <= 10_000:
            raise ScenarioError(f"{p}.rate", "must be > 0 and <= 10000 (drops per second)")
        duration = None if s.duration is None else _seconds(s.duration, f"{p}.duration")
        out["reconnect_storm"] = (
            float(s.rate),
            _seconds(s.reconnect_after, f"{p}.reconnect_after"),
            _seconds(s.start_after, f"{p}.start_after"),
            duration,
        )
    return Faults(**out)


# -- per device ----------------------------------------------------------------


class DeviceFaults:
    """The faults one device has (its ``devices`` draws already made), as plain rates.

    A rate of 0 means this device does not have that fault.
    """

    __slots__ = (
        "drift_ppm",
        "duplicate",
        "malformed",
        "missing",
        "missing_fields",
        "out_of_order",
        "range_fields",
        "range_rate",
        "rng",
        "silent",
        "silent_s",
        "skew_s",
        "tcp_drop",
        "tcp_reconnect_s",
        "wrong",
        "wrong_fields",
    )

    def __init__(self, faults: Faults, rng: random.Random) -> None:
        self.rng = rng

        def has(devices: float) -> bool:
            # Always draw, so one fault's share does not shift the next one's stream.
            return rng.random() < devices

        f = faults
        self.range_rate = (
            f.out_of_range.rate if f.out_of_range and has(f.out_of_range.devices) else 0
        )
        self.range_fields = f.out_of_range.fields if f.out_of_range else None
        self.missing = (
            f.missing_field.rate if f.missing_field and has(f.missing_field.devices) else 0
        )
        self.missing_fields = f.missing_field.fields if f.missing_field else None
        self.wrong = f.wrong_type.rate if f.wrong_type and has(f.wrong_type.devices) else 0
        self.wrong_fields = f.wrong_type.fields if f.wrong_type else None
        self.malformed = _rate(f.malformed_json, has)
        self.duplicate = _rate(f.duplicate, has)
        self.out_of_order = _rate(f.out_of_order, has)
        self.skew_s = f.clock_skew[0] if f.clock_skew and has(f.clock_skew[1]) else 0.0
        self.drift_ppm = f.clock_drift[0] if f.clock_drift and has(f.clock_drift[1]) else 0.0
        self.silent = f.silent[0] if f.silent and has(f.silent[1]) else 0.0
        self.silent_s = f.silent[2] if f.silent else 0.0
        self.tcp_drop = f.tcp_drop[0] if f.tcp_drop and has(f.tcp_drop[1]) else 0.0
        self.tcp_reconnect_s = f.tcp_drop[2] if f.tcp_drop else 0.0

    @property
    def clock(self) -> bool:
        return bool(self.skew_s or self.drift_ppm)

    def clock_shift(self, now: float, since: float) -> float:
        """Seconds to add to this device's timestamps: fixed skew plus drift that grows
        with the time the device has run (ppm of elapsed time)."""
        return self.skew_s + self.drift_ppm * 1e-6 * (now - since)

    def damage_values(
        self,
        values: dict[str, Any],
        bounds: dict[str, tuple[float, float, bool]],
        counts: dict[str, int],
    ) -> None:
        """Apply the value faults this send draws, in place."""
        rng = self.rng
        if self.range_rate and rng.random() < self.range_rate:
            key = _pick(rng, self.range_fields, bounds)
            if key is not None and key in values:
                values[key] = out_of_range(bounds[key], rng)
                count(counts, "out_of_range")
        if self.wrong and rng.random() < self.wrong:
            key = _pick(rng, self.wrong_fields, values)
            if key is not None:
                values[key] = wrong_type(values[key])
                count(counts, "wrong_type")
        if self.missing and rng.random() < self.missing:
            key = _pick(rng, self.missing_fields, values)
            if key is not None:
                del values[key]
                count(counts, "missing_field")


def _rate(setting: tuple[float, float] | None, has: Any) -> float:
    return setting[0] if setting and has(setting[1]) else 0.0


def _pick(rng: random.Random, names: tuple[str, ...] | None, present: dict[str, Any]) -> str | None:
    choices = [n for n in names if n in present] if names else list(present)
    return rng.choice(choices) if choices else None


def count(counts: dict[str, int], name: str, n: int = 1) -> None:
    """Add to the faults injected so far, by name (what GroupReport.faults carries)."""
    counts[name] = counts.get(name, 0) + n


def out_of_range(bounds: tuple[float, float, bool], rng: random.Random) -> float | int:
    """A value clearly outside [lo, hi]: 10-100 % of the span beyond either bound."""
    lo, hi, is_int = bounds
    span = (hi - lo) or max(abs(hi), 1.0)
    beyond = span * rng.uniform(0.1, 1.0)
    v = hi + beyond if rng.random() < 0.5 else lo - beyond
    if is_int:
        iv = int(v)
        # int() truncates towards zero, which can land back on a bound
        return iv if iv > hi or iv < lo else (int(hi) + 1 if v > hi else int(lo) - 1)
    return round(v, 2) if round(v, 2) not in (lo, hi) else v


def wrong_type(value: Any) -> Any:
    """The same information in a type a strict consumer must reject."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return len(value)
    if value is None:
        return "null"
    return str(value)


def malformed(data: bytes, rng: random.Random) -> bytes:
    """A proper prefix of a JSON object is never valid JSON: the closing brace is gone."""
    if len(data) < 2:
        return b"{"
    return data[: rng.randint(1, len(data) - 1)]
