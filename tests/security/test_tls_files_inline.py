"""A template's TLS material is PEM text; the appliance and agents never open a path from it.

``ca``/``cert``/``key`` used to be file paths, checked with ``is_file()`` at the
appliance (an oracle for which files exist) and opened by agents, including the
one running inside the appliance process. Now only the command line reads files,
named relative to the scenario, and inlines them when the scenario loads.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent.errors import ScenarioError
from agent.template import load_scenario, parse_template
from tests.integration.control.conftest import Api
from tests.integration.transports.conftest import Certs
from tests.security.conftest import mqtt_template

URL = "mqtts://127.0.0.1:8883"


@pytest.mark.parametrize("name", ["ca", "cert", "key"])
@pytest.mark.parametrize("path", ["/etc/hostname", "/etc/passwd", "/no/such/file.pem"])
def test_the_appliance_refuses_paths_alike_whether_they_exist_or_not(
    api: Api, certs: Certs, name: str, path: str
) -> None:
    tls = {"cert": certs.client_cert.read_text(), "key": certs.client_key.read_text()}
    doc = mqtt_template(URL, **{**tls, name: path})
    r = api.call("PUT", "/api/v1/templates/t", json=doc)
    assert r.status_code == 400, r.text
    assert r.json()["detail"].startswith(
        f"templates.t.transport.mqtt.{name}: must be PEM text (-----BEGIN ...), not a file path"
    )
    assert "root:" not in r.text  # nothing of the file comes back
    assert api.call("GET", "/api/v1/templates").json() == []


def test_inline_pem_is_stored_and_sent_as_is(api: Api, certs: Certs) -> None:
    pem = {
        "ca": certs.ca.read_text(),
        "cert": certs.client_cert.read_text(),
        "key": certs.client_key.read_text(),
    }
    r = api.call("PUT", "/api/v1/templates/t", json=mqtt_template(URL, **pem))
    assert r.status_code == 201, r.text
    assert r.json()["spec"]["transport"]["mqtt"]["ca"] == pem["ca"]
    bad = mqtt_template(
        URL, ca="-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----"
    )
    r = api.call("PUT", "/api/v1/templates/u", json=bad)
    assert r.status_code == 400 and "ca: not a valid PEM certificate" in r.json()["detail"]


def test_the_command_line_inlines_files_beside_the_scenario(tmp_path: Path, certs: Certs) -> None:
    (tmp_path / "tls").mkdir()
    (tmp_path / "tls" / "ca.pem").write_text(certs.ca.read_text())
    (tmp_path / "client.pem").write_text(certs.client_cert.read_text())
    scenario = {
        "templates": {
            "t": mqtt_template(URL, ca="tls/ca.pem", cert="client.pem", key=str(certs.client_key))
        },
        "groups": [{"name": "g", "template": "t", "count": 1}],
    }
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario))
    spec = load_scenario(path).templates["t"]
    sent = spec.to_dict()["transport"]["mqtt"]  # what `mockmock run` hands the appliance
    assert sent["ca"] == certs.ca.read_text()
    assert sent["cert"] == certs.client_cert.read_text()
    assert sent["key"] == certs.client_key.read_text()  # absolute paths are the user's own
    assert spec.transport.mqtt is not None and spec.transport.mqtt.ca == certs.ca.read_text()

    scenario["templates"]["t"]["transport"]["mqtt"]["ca"] = "tls/missing.pem"
    path.write_text(yaml.safe_dump(scenario))
    with pytest.raises(ScenarioError) as e:
        load_scenario(path)
    assert str(e.value).startswith("templates.t.transport.mqtt.ca: cannot read tls/missing.pem")


def test_an_agent_given_a_path_in_its_desired_state_refuses_it() -> None:
    # The engine parses every assignment's template: a path never reaches ssl.
    with pytest.raises(ScenarioError) as e:
        parse_template("t", mqtt_template(URL, ca="/etc/ssl/certs/ca-certificates.crt"))
    assert "must be PEM text" in str(e.value)
