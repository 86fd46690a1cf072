"""Device identities from CSV/JSONL, Azure SAS tokens, per-device constants."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path
from urllib.parse import parse_qs, quote

import pytest

from agent import identity
from agent.errors import ScenarioError
from agent.template import load_scenario, parse_template
from tests.unit.agent.test_engine import Sim, tpl

KEY = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def test_sas_token_signs_the_resource_and_expiry() -> None:
    token = identity.sas_token("hub.azure-devices.net/devices/d-1", KEY, 1_900_000_000)
    assert token.startswith("SharedAccessSignature ")
    fields = {k: v[0] for k, v in parse_qs(token.removeprefix("SharedAccessSignature ")).items()}
    assert fields["sr"] == "hub.azure-devices.net/devices/d-1"
    assert fields["se"] == "1900000000"
    sr = quote("hub.azure-devices.net/devices/d-1", safe="")
    mac = hmac.new(base64.b64decode(KEY), f"{sr}\n1900000000".encode(), hashlib.sha256)
    assert fields["sig"] == base64.b64encode(mac.digest()).decode()
    assert identity.sas_token("r", KEY, 1, "iothubowner").endswith("&skn=iothubowner")


def test_group_key_derives_each_device_key() -> None:
    k1, k2 = (identity.derive_device_key(KEY, d) for d in ("d-1", "d-2"))
    assert k1 != k2 and len(base64.b64decode(k1)) == 32
    mac = hmac.new(base64.b64decode(KEY), b"d-1", hashlib.sha256).digest()
    assert k1 == base64.b64encode(mac).decode()


async def test_sas_becomes_each_devices_password() -> None:
    sim = Sim(
        tpl(
            credentials={
                "username": "hub.azure-devices.net/{device_id}/?api-version=2021-04-12",
                "sas": {"key": KEY, "group_key": True, "ttl": "1h"},
            }
        ),
        count=2,
    )
    creds = sim.sender.options.credentials
    assert creds[0][0] == "hub.azure-devices.net/g-00000/?api-version=2021-04-12"
    token = creds[1][1]
    fields = {k: v[0] for k, v in parse_qs(token.removeprefix("SharedAccessSignature ")).items()}
    assert fields["sr"] == "127.0.0.1/devices/g-00001"  # {host}/devices/{device_id}
    assert 3590 < int(fields["se"]) - sim.now <= 3600
    device_key = identity.derive_device_key(KEY, "g-00001")
    assert token == identity.sas_token(fields["sr"], device_key, int(fields["se"]))


def test_sas_mistakes() -> None:
    base = {"username": "u", "sas": {"key": "not base64!"}}
    with pytest.raises(ScenarioError, match=r"credentials\.sas\.key: must be base64"):
        parse_template("t", tpl(credentials=base))
    with pytest.raises(ScenarioError, match=r"credentials: give either password or sas"):
        parse_template("t", tpl(credentials={**base, "password": "x", "sas": {"key": KEY}}))


def _scenario(tmp_path: Path, rows: str, name: str = "devices.csv", count: int = 2) -> Path:
    (tmp_path / name).write_text(rows)
    doc = tmp_path / "s.yaml"
    doc.write_text(
        f"""
templates:
  meter:
    transport: {{mqtt: {{url: "mqtt://127.0.0.1:1", topic: "m/{{device_id}}"}}}}
    identities: {{file: {name}}}
    payload:
      serial: {{device_field: serial}}
      kind: {{device_field: kind}}
      label: {{format: "{{device_id}}"}}
groups: [{{name: meters, template: meter, count: {count}}}]
"""
    )
    return doc


async def test_identities_from_csv_give_ids_credentials_and_constants(tmp_path: Path) -> None:
    rows = "id,username,password,serial,kind\nm-a,ua,pa,1001,gas\nm-b,ub,,1002,water\n"
    doc = _scenario(tmp_path, rows)
    t = load_scenario(doc).templates["meter"]
    assert [r["id"] for r in t.raw["identities"]["rows"]] == ["m-a", "m-b"]  # inlined
    sim = Sim(t.raw, count=2)
    assert sim.runner.device_ids == ["m-a", "m-b"]
    assert sim.sender.options.credentials == [("ua", "pa"), ("ub", None)]
    sender = await sim.run(0.99)
    assert sender.payloads() == [
        {"serial": 1001, "kind": "gas", "label": "m-a"},
        {"serial": 1002, "kind": "water", "label": "m-b"},
    ]
    assert [topic for _, _, topic, _, _ in sender.sent] == ["m/m-a", "m/m-b"]


def test_identities_mistakes(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"groups\[0\]\.count: must be <= 1 \(the rows of"):
        load_scenario(_scenario(tmp_path, "id,serial,kind\nm-a,1,x\n", count=2))
    with pytest.raises(ScenarioError, match=r"identities\.rows\[1\]\.id: duplicate device id"):
        load_scenario(_scenario(tmp_path, '{"id": "a"}\n{"id": "a"}\n', name="d.jsonl"))
    with pytest.raises(ScenarioError, match=r"identities\.rows\[0\]: each row needs an id"):
        load_scenario(_scenario(tmp_path, "name\nx\n"))
    with pytest.raises(ScenarioError, match=r"identities\.file: .*cannot read"):
        doc = _scenario(tmp_path, "id\na\n")
        doc.write_text(doc.read_text().replace("devices.csv", "missing.csv"))
        load_scenario(doc)


def test_sas_ttl_defaults_to_a_day() -> None:
    t = parse_template("t", tpl(credentials={"username": "u", "sas": {"key": KEY}}))
    assert t.sas is not None and t.sas[3] == 86400
