"""Names are printable and short; patterns cannot allocate gigabytes; only known schemes.

A device-id pattern of ``{index:50000000d}`` used to be stored and then formatted
for every device (50 MB each); names with NUL or a newline went into the
database, topics and client ids; ``tcp://`` and port 0 were taken (port 0 even
silently became 1883).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from agent.errors import ScenarioError
from agent.template import parse_scenario, parse_template
from tests.integration.control.conftest import Api
from tests.security.conftest import http_template, mqtt_template

TPL = mqtt_template("mqtt://127.0.0.1:1883")


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/api/v1/templates/a%00b", "path: must not contain control characters (found \\x00)"),
        ("/api/v1/templates/bad%0A", "path: must not contain control characters (found \\x0a)"),
        ("/api/v1/templates/" + "x" * 64, "name: must be at most 63 long"),
        ("/api/v1/templates/" + "x" * 5000, "path: a segment is longer than 255"),
        ("/api/v1/templates/a%20b", "name: must match"),
        ("/api/v1/templates/-lead", "name: must match"),
    ],
)
def test_template_names_are_printable_and_short(api: Api, path: str, says: str) -> None:
    r = api.call("PUT", path, json=TPL)
    assert r.status_code == 400, r.text
    assert r.json()["detail"].startswith(says), r.json()["detail"]


def test_group_names_and_references_are_checked_too(api: Api) -> None:
    assert api.call("PUT", "/api/v1/templates/t", json=TPL).status_code == 201
    r = api.call("PUT", "/api/v1/groups/g%01", json={"template": "t", "count": 1})
    assert r.status_code == 400 and "control characters" in r.json()["detail"]
    r = api.call("PUT", "/api/v1/groups/g", json={"template": "t\n", "count": 1})
    assert r.status_code in (400, 404) and r.json()["detail"].startswith("template")
    assert api.call("GET", "/api/v1/groups").json() == []


@pytest.mark.parametrize(
    ("name", "status"),
    [("bob\n", 400), ("bob\x00", 400), ("b" * 65, 400), ("bob", 201)],
)
def test_user_names_end_where_they_seem_to(api: Api, name: str, status: int) -> None:
    assert api.call("POST", "/api/v1/users", json={"name": name}).status_code == status


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"id": "{index:50000000d}"}, "templates.t.id: {index:50000000d}: width and precision"),
        ({"id": "{index:.99999999}"}, "templates.t.id: {index:.99999999}: width and precision"),
        ({"id": "{index:{group}}"}, "templates.t.id: {index:{group}}: nested placeholders"),
        ({"id": "{device_id!r}"}, "templates.t.id: {device_id!r}: conversions"),
        ({"id": "d\x00{index}"}, "templates.t.id: must not contain control characters"),
        ({"id": "d" * 2000}, "templates.t.id: at most 1024 characters"),
    ],
)
def test_id_patterns_are_bounded(api: Api, change: dict[str, Any], says: str) -> None:
    started = time.monotonic()
    r = api.call("PUT", "/api/v1/templates/t", json={**TPL, **change})
    assert r.status_code == 400, r.text
    assert r.json()["detail"].startswith(says), r.json()["detail"]
    assert time.monotonic() - started < 5  # nothing was formatted 50 MB wide


@pytest.mark.parametrize(
    ("mqtt", "says"),
    [
        ({"topic": "lab/{index:0>99999}"}, "topic: {index:0>99999}: width and precision"),
        ({"topic": "lab/\x00/x"}, "topic: must not contain control characters"),
        ({"topic": "lab/x", "username": "u\x07"}, "username: must not contain control"),
        (
            {"topic": "t", "will": {"topic": "w/{index:99999999}"}},
            "will.topic: {index:99999999}: width and precision",
        ),
    ],
)
def test_topics_are_bounded(api: Api, mqtt: dict[str, Any], says: str) -> None:
    doc = {"transport": {"mqtt": {"url": "mqtt://127.0.0.1:1883", **mqtt}}, "payload": {"a": 1}}
    r = api.call("PUT", "/api/v1/templates/t", json=doc)
    assert r.status_code == 400, r.text
    assert r.json()["detail"].startswith(f"templates.t.transport.mqtt.{says}"), r.json()["detail"]


def test_http_header_placeholders_are_bounded(api: Api) -> None:
    doc = http_template("http://127.0.0.1:8080/x")
    doc["transport"]["http"]["headers"] = {"X-Id": "{device_id:>999999999}"}
    r = api.call("PUT", "/api/v1/templates/t", json=doc)
    assert r.status_code == 400
    assert r.json()["detail"].startswith("templates.t.transport.http.headers.X-Id: {device_id")


@pytest.mark.parametrize(
    ("transport", "says"),
    [
        ({"mqtt": {"url": "tcp://127.0.0.1:1883", "topic": "t"}}, "mqtt.url: scheme must be"),
        ({"mqtt": {"url": "ssl://127.0.0.1:8883", "topic": "t"}}, "mqtt.url: scheme must be"),
        ({"mqtt": {"url": "http://127.0.0.1:1883", "topic": "t"}}, "mqtt.url: scheme must be"),
        ({"mqtt": {"url": "mqtt://127.0.0.1:0", "topic": "t"}}, "mqtt.url: port must be 1-65535"),
        ({"mqtt": {"host": "127.0.0.1", "port": 0, "topic": "t"}}, "mqtt.port: must be >= 1"),
        ({"http": {"url": "https://127.0.0.1:0/x"}}, "http.url: port must be 1-65535"),
        ({"http": {"url": "mqtt://127.0.0.1/x"}}, "http.url: scheme must be http:// or https://"),
        ({"mqtt": {"url": "mqtt://[::1", "topic": "t"}}, "mqtt.url: not a URL"),
    ],
)
def test_only_known_schemes_and_real_ports(api: Api, transport: dict[str, Any], says: str) -> None:
    r = api.call("PUT", "/api/v1/templates/t", json={"transport": transport, "payload": {"a": 1}})
    assert r.status_code == 400, r.text
    assert r.json()["detail"].startswith(f"templates.t.transport.{says}"), r.json()["detail"]


def test_the_command_line_scenario_has_the_same_bounds() -> None:
    group = {"name": "g", "template": "t", "count": 1}
    for doc, says in (
        ({**TPL, "id": "{index:50000000d}"}, "templates.t.id: {index:50000000d}"),
        (mqtt_template("tcp://127.0.0.1:1883"), "templates.t.transport.mqtt.url: scheme"),
    ):
        with pytest.raises(ScenarioError) as e:
            parse_scenario({"templates": {"t": doc}, "groups": [group]})
        assert str(e.value).startswith(says), str(e.value)
    with pytest.raises(ScenarioError) as e:
        parse_scenario({"templates": {"t": TPL}, "groups": [{**group, "name": "g\n"}]})
    assert str(e.value).startswith("groups[0].name: must be letters")
    with pytest.raises(ScenarioError) as e:
        parse_template("bad name", TPL)
    assert "name must be letters" in str(e.value)


def test_a_broken_url_in_a_dry_run_is_a_400(api: Api) -> None:
    r = api.call("GET", "/api/v1/targets/check?url=http://[::1/x")
    assert r.status_code == 400 and r.json()["detail"].startswith("url: not a URL")
