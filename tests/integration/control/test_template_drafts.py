"""POST /api/v1/templates/validate and /preview: an editor's draft checked by the appliance."""

from __future__ import annotations

import msgspec

from appliance.contract.templates import PreviewResult, TemplateCheck
from tests.integration.control.conftest import Api

GOOD = """\
transport:
  mqtt: {url: "mqtt://127.0.0.1:18830", topic: "lab/{device_id}/t", qos: 0}
interval: 1s
payload:
  seq: {counter: {}}
  temp:
    uniform: {min: 18.0, max: 26.0}
"""


def check(api: Api, text: str, role: str = "operator") -> TemplateCheck:
    r = api.call("POST", "/api/v1/templates/validate", role, json={"name": "t", "text": text})
    assert r.status_code == 200, r.text
    return msgspec.convert(r.json(), TemplateCheck)


def test_a_good_draft_is_valid_and_normalised(api: Api) -> None:
    got = check(api, GOOD)
    assert got.valid and got.error is None
    assert got.spec is not None and list(got.spec["payload"]) == ["seq", "temp"]
    assert api.call("GET", "/api/v1/templates").json() == []  # nothing stored


def test_a_wrong_field_names_its_path_and_line(api: Api) -> None:
    got = check(api, GOOD.replace("uniform:", "unifrom:"))
    assert not got.valid and got.error is not None
    assert got.error.path == "templates.t.payload.temp"
    assert "unknown generator 'unifrom'" in got.error.message
    assert got.error.line == 6  # the `temp:` line


def test_broken_yaml_is_one_plain_sentence_with_its_line(api: Api) -> None:
    got = check(api, "interval: 1s\npayload:\n  temp: uniform: {min: 1}\n")
    assert got.error is not None and not got.valid
    assert got.error.line == 3 and got.error.path == ""
    assert "\n" not in got.error.message
    assert got.error.message.startswith("not valid YAML, column ")
    assert "a colon where a value was expected" in got.error.message
    tab = check(api, "interval: 1s\npayload:\n\tseq: {counter: {}}\n").error
    assert tab is not None and "YAML indents with spaces" in tab.message


def test_a_draft_that_is_not_a_mapping(api: Api) -> None:
    got = check(api, "- just\n- a list\n")
    assert got.error is not None and "must be a mapping" in got.error.message


def test_preview_is_seeded_and_sends_nothing(api: Api) -> None:
    body = {"name": "t", "text": GOOD, "seed": 7, "devices": 2, "count": 3}
    first = msgspec.convert(
        api.call("POST", "/api/v1/templates/preview", "operator", json=body).json(),
        PreviewResult,
    )
    again = msgspec.convert(
        api.call("POST", "/api/v1/templates/preview", "operator", json=body).json(),
        PreviewResult,
    )
    assert first.valid and len(first.messages) == 6
    assert {m.device for m in first.messages} == {"t-00000", "t-00001"}
    assert all(m.topic == f"lab/{m.device}/t" for m in first.messages)
    assert all(18 <= m.payload["temp"] <= 26 for m in first.messages)
    assert first == again
    other = api.call("POST", "/api/v1/templates/preview", "operator", json={**body, "seed": 8})
    assert other.json()["messages"] != msgspec.to_builtins(first.messages)


def test_preview_of_a_bad_draft_says_why(api: Api) -> None:
    r = api.call(
        "POST", "/api/v1/templates/preview", "operator", json={"name": "t", "text": "interval: x"}
    )
    got = msgspec.convert(r.json(), PreviewResult)
    assert not got.valid and got.messages == [] and got.error is not None


def test_bounds_and_roles(api: Api) -> None:
    too_many = {"name": "t", "text": GOOD, "devices": 21}
    r = api.call("POST", "/api/v1/templates/preview", "operator", json=too_many)
    assert r.status_code == 400 and "devices" in r.text
    r = api.call("POST", "/api/v1/templates/validate", "viewer", json={"name": "t", "text": GOOD})
    assert r.status_code == 403
    r = api.call("POST", "/api/v1/templates/validate", "operator", json={"name": "t"})
    assert r.status_code == 400 and "text" in r.text


def test_templates_named_like_the_routes_still_save(api: Api) -> None:
    import yaml

    for name in ("validate", "preview"):
        r = api.call("PUT", f"/api/v1/templates/{name}", "operator", json=yaml.safe_load(GOOD))
        assert r.status_code in (200, 201), (name, r.status_code, r.text)
        assert api.call("GET", f"/api/v1/templates/{name}").json()["name"] == name
