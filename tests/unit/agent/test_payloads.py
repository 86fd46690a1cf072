"""Format fields, encodings and extra streams: schema errors, bytes, and the engine."""

from __future__ import annotations

from pathlib import Path

import cbor2
import msgpack
import orjson
import pytest

from agent.errors import ScenarioError
from agent.generators import compile_fields
from agent.template import load_scenario, parse_template
from tests.unit.agent.test_engine import Sim, tpl

PROTO = """
syntax = "proto3";
package lab;
message Reading {
  string device = 1;
  int64 ts = 2;
  double temp = 3;
  repeated int32 samples = 4;
  Place place = 5;
  enum Health { OK = 0; WARN = 1; }
  Health health = 6;
}
message Place { string site = 1; int32 floor = 2; }
"""


def parsed(**extra):
    return parse_template("t", tpl(**extra))


def values(t, **kw):
    return compile_fields(t.payload, rng=__import__("random").Random(1), device_id="d-7", **kw)


# -- format ---------------------------------------------------------------------


def test_format_reads_names_and_other_fields_and_keeps_literal_braces() -> None:
    t = parsed(
        payload={
            "temp": {"const": 21.456},
            "label": {"format": "sensor-{device_id}: {temp:.1f} C {{raw}}"},
            "note": "{device_id} stays literal in a constant",
        }
    )
    out = values(t).next(0)
    assert out == {
        "temp": 21.456,
        "label": "sensor-d-7: 21.5 C {raw}",
        "note": "{device_id} stays literal in a constant",
    }
    assert list(out) == ["temp", "label", "note"]  # order as written


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        ("{nope}", "unknown placeholder {nope} (known: a, device_id, group, index, status)"),
        ("{a!r}", "no !conversions"),
        ("{", "bad placeholder"),
        ("{0}", "must name a field"),
    ],
)
def test_format_errors_name_the_field(fmt: str, message: str) -> None:
    with pytest.raises(ScenarioError) as e:
        parsed(payload={"a": 1, "f": {"format": fmt}})
    assert e.value.path.startswith("templates.t.payload.f")
    assert message in e.value.message


def test_format_of_a_field_a_status_omits_is_refused() -> None:
    with pytest.raises(ScenarioError, match=r"statuses\.quiet\.payload\.f\.format: unknown"):
        parsed(
            payload={"a": 1, "f": {"format": "{a}"}},
            statuses={"normal": {}, "quiet": {"omit": ["a"]}},
        )


# -- encodings ------------------------------------------------------------------


async def _first(t: dict, n: int = 1) -> list[bytes]:
    sim = Sim(t, count=1)
    sender = await sim.run(n - 0.01)
    return [p for *_, p, _ in sender.sent]


async def test_msgpack_and_cbor_carry_the_values() -> None:
    payload = {"n": {"counter": {"start": 1}}, "ok": True, "name": {"format": "x-{n}"}}
    for enc, loads in (("msgpack", msgpack.unpackb), ("cbor", cbor2.loads)):
        got = await _first(tpl(payload=payload, encoding=enc), 2)
        assert [loads(b) for b in got] == [
            {"n": 1, "ok": True, "name": "x-1"},
            {"n": 2, "ok": True, "name": "x-2"},
        ]


async def test_raw_and_hex_send_one_field_as_bytes() -> None:
    assert await _first(tpl(payload={"v": {"format": "T={index}"}}, encoding="raw")) == [b"T=0"]
    assert await _first(tpl(payload={"v": "01ff"}, encoding="hex")) == [b"\x01\xff"]
    with pytest.raises(ScenarioError, match=r"payload: encoding raw sends one field; .* has 2"):
        parsed(payload={"a": 1, "b": 2}, encoding="raw")


async def test_protobuf_from_a_proto_file_loaded_with_the_scenario(tmp_path: Path) -> None:
    (tmp_path / "reading.proto").write_text(PROTO)
    doc = tpl(
        payload={
            "device": {"device_id": {}},
            "ts": {"timestamp": {}},
            "temp": {"uniform": {"min": 1.0, "max": 2.0}},
            "samples": {"bulk": {"count": 3, "of": {"counter": {}}}},
            "place": {"object": {"site": "north", "floor": 3}},
            "health": {"choice": {"values": ["OK", "WARN"]}},
        },
        encoding={"protobuf": {"file": "reading.proto", "message": "lab.Reading"}},
    )
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        orjson.dumps({"templates": {"t": doc}, "groups": [{"name": "g", "template": "t",
                                                            "count": 1}]}).decode()
    )  # fmt: skip
    t = load_scenario(scenario).templates["t"]
    assert "schema" in t.raw["encoding"]["protobuf"]  # inlined: agents read no files
    from agent import protobuf

    cls = protobuf.message_class(PROTO, "lab.Reading", "x")
    got = await _first(t.raw, 2)
    msgs = []
    for b in got:
        m = cls()
        m.ParseFromString(b)
        msgs.append(m)
    assert [m.device for m in msgs] == ["g-00000", "g-00000"]
    assert list(msgs[1].samples) == [3, 4, 5] and msgs[0].place.floor == 3
    assert all(1.0 <= m.temp <= 2.0 and m.ts > 1.7e12 for m in msgs)


@pytest.mark.parametrize(
    ("payload", "path", "message"),
    [
        ({"nope": 1}, "payload.nope", "message lab.Reading has no field 'nope'"),
        ({"floor": 1}, "payload.floor", "has no field 'floor'"),
        ({"ts": "soon"}, "payload", "cannot encode as protobuf"),
    ],
)
def test_protobuf_mistakes_are_caught_when_the_scenario_loads(payload, path, message) -> None:
    enc = {"protobuf": {"schema": PROTO, "message": "lab.Reading"}}
    with pytest.raises(ScenarioError) as e:
        parsed(payload=payload, encoding=enc)
    assert e.value.path == f"templates.t.{path}" and message in e.value.message


def test_protobuf_unknown_message_and_bad_source() -> None:
    with pytest.raises(ScenarioError, match=r"no message 'lab.Nope' .* known: lab.Place"):
        parsed(encoding={"protobuf": {"schema": PROTO, "message": "lab.Nope"}})
    with pytest.raises(ScenarioError, match=r"encoding.protobuf.message: cannot parse the .proto"):
        parsed(encoding={"protobuf": {"schema": "message A { int32 = ; }", "message": "A"}})


def test_verify_needs_json() -> None:
    with pytest.raises(ScenarioError, match=r"templates\.t\.verify: needs encoding: json"):
        parsed(encoding="cbor", verify=True)


# -- streams --------------------------------------------------------------------


async def test_streams_have_their_own_topic_timing_and_share_the_status() -> None:
    sim = Sim(
        tpl(
            payload={"n": {"counter": {"start": 1}}},
            statuses={"normal": {}, "hot": {}},
            transitions=[{"from": "normal", "to": "hot", "after": "2500ms"}],
            streams={
                "heartbeat": {"topic": "hb/{device_id}", "interval": "2s",
                              "payload": {"up": {"counter": {}}, "st": {"status": {}}}},
                "event": {"topic": "ev/{device_id}", "when": "status_change", "qos": 1,
                          "encoding": "msgpack",
                          "payload": {"text": {"format": "{device_id} is {status}"}}},
            },
        ),
        count=1,
    )  # fmt: skip
    sender = await sim.run(5.99)
    by_topic: dict[str, list] = {}
    for _, _, topic, data, qos in sender.sent:
        by_topic.setdefault(topic.split("/")[0], []).append((data, qos))
    assert len(by_topic["t"]) == 6  # the main stream, every second
    hb = [orjson.loads(d) for d, _ in by_topic["hb"]]
    assert hb == [{"up": 0, "st": "normal"}, {"up": 1, "st": "normal"}, {"up": 2, "st": "hot"}]
    assert [(msgpack.unpackb(d), q) for d, q in by_topic["ev"]] == [({"text": "g-00000 is hot"}, 1)]


def test_stream_mistakes() -> None:
    hb = {"topic": "hb/{device_id}", "interval": "1s", "payload": {"a": 1}}
    with pytest.raises(ScenarioError, match=r"streams\.hb: give either interval"):
        parsed(streams={"hb": {**hb, "when": "status_change"}})
    with pytest.raises(ScenarioError, match=r"streams\.hb\.topic: must differ"):
        parsed(streams={"hb": {**hb, "topic": "t/{device_id}"}})
    with pytest.raises(ScenarioError, match=r"streams\.hb\.payload\.f\.format: unknown"):
        parsed(streams={"hb": {**hb, "payload": {"f": {"format": "{zz}"}}}})
