"""`mockmock template preview`: sample messages without sending anything."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from appliance.command.template import template

EXAMPLE = Path(__file__).parents[3] / "deploy" / "examples" / "thermo.yaml"


def preview(*args: str) -> tuple[int, list[dict], str]:
    result = CliRunner().invoke(template, ["preview", *args])
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    return result.exit_code, rows, result.stderr


def test_prints_count_messages_per_device_reproducibly() -> None:
    code, rows, _ = preview(str(EXAMPLE), "--devices", "3", "--count", "4", "--seed", "7")
    assert code == 0 and len(rows) == 12
    assert {r["device"] for r in rows} == {
        "thermo-fleet-00000",
        "thermo-fleet-00001",
        "thermo-fleet-00002",
    }
    assert all(r["topic"] == f"lab/{r['device']}/telemetry" for r in rows)
    assert all(18 <= r["payload"]["temp"] <= 26 for r in rows)
    _, again, _ = preview(str(EXAMPLE), "--devices", "3", "--count", "4", "--seed", "7")
    _, other, _ = preview(str(EXAMPLE), "--devices", "3", "--count", "4", "--seed", "8")

    def values(rs: list[dict]) -> list:
        return [(r["device"], r["payload"]["temp"], r["payload"]["state"]) for r in rs]

    assert values(rows) == values(again) != values(other)


def test_faults_and_statuses_show_in_the_preview(tmp_path) -> None:
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["templates"]["thermo"].update(
        statuses={"normal": {}, "hot": {"payload": {"temp": 99}}},
        transitions=[{"from": "normal", "to": "hot", "after": "2s"}],
        faults={"malformed_json": {"rate": 0.3}},
    )
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(doc, sort_keys=False))
    code, rows, err = preview(str(f), "--devices", "1", "--count", "20", "--seed", "1")
    assert code == 0, err
    assert [r["status"] for r in rows[:2]] == ["normal", "normal"]
    assert {r["status"] for r in rows[2:]} == {"hot"}
    assert any("raw" in r for r in rows)
    assert all(r["payload"]["temp"] == 99 for r in rows[2:] if "payload" in r)


def test_a_bad_file_is_one_line_naming_the_field(tmp_path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(EXAMPLE.read_text().replace("min: 18.0, max: 26.0", "min: 30, max: 26.0"))
    code, rows, err = preview(str(f))
    assert code == 2 and rows == []
    assert err.strip().splitlines() == [
        "error: templates.thermo.payload.temp.uniform.max: must be >= min (30)"
    ]
    code, _, err = preview(str(EXAMPLE), "--template", "nope")
    assert code == 2 and err.startswith("error: --template: unknown template 'nope'")


async def test_preview_of_sparkplug_and_binary_encodings_shows_hex() -> None:
    from pathlib import Path

    from agent.engine import preview
    from agent.template import load_scenario

    examples = Path(__file__).parents[3] / "deploy" / "examples"
    sp = load_scenario(examples / "sparkplug-plant.yaml").templates["press-line"]
    rows = await preview("press-line", sp.raw, devices=1, count=5, seed=1)
    assert [r["topic"].split("/")[2] for r in rows] == ["NBIRTH", "DBIRTH", "DBIRTH", "DBIRTH",
                                                        "NDATA"]  # fmt: skip
    assert all("hex" in r and "payload" not in r for r in rows)
    pb = load_scenario(examples / "protobuf-sensors.yaml").templates["pb-sensor"]
    rows = await preview("pb-sensor", pb.raw, devices=1, count=1, seed=1)
    assert bytes.fromhex(rows[0]["hex"])  # the protobuf message, as hex
