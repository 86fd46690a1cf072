"""Every example scenario in deploy/examples loads as the README shows it."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.template import load_scenario

EXAMPLES = sorted((Path(__file__).parents[3] / "deploy" / "examples").glob("*.yaml"))


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 8


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_loads(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.groups and scenario.templates


def test_examples_use_what_they_say() -> None:
    by = {p.name: load_scenario(p) for p in EXAMPLES}
    assert by["aws-iot-core.yaml"].templates["line-sensor"].transport.mqtt.identity == "per_device"
    assert by["azure-iot-hub.yaml"].templates["thermostat"].sas is not None
    assert by["sparkplug-plant.yaml"].templates["press-line"].sparkplug.devices == 3
    pb = by["protobuf-sensors.yaml"].templates["pb-sensor"]
    assert pb.encoding.kind == "protobuf" and "message Reading" in pb.encoding.schema
    assert [s.name for s in by["streams.yaml"].templates["pump"].streams] == ["heartbeat", "event"]
    assert len(by["meters.yaml"].templates["meter"].identities) == 3
    ws = by["websocket.yaml"].templates["browser-like"].transport.mqtt
    assert ws.ws_path == "/mqtt" and ws.properties is not None
    ci = by["ci-gates.yaml"].templates["gateway"].transport.mqtt
    assert ci.clean_start is False and ci.session_expiry_s == 600
