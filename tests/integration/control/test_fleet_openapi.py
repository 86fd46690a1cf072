"""The OpenAPI document describes what the fleet routes answer: a real schema for every
2xx answer (not a bare ``object``), with the field names the appliance really sends."""

from __future__ import annotations

from typing import Any

import pytest

from appliance.fleet import service as fleet
from tests.integration.control.conftest import Api

OPERATIONS = [
    ("get", "/api/v1/templates"),
    ("get", "/api/v1/templates/{name}"),
    ("put", "/api/v1/templates/{name}"),
    ("get", "/api/v1/templates/validate"),
    ("put", "/api/v1/templates/validate"),
    ("post", "/api/v1/templates/validate"),
    ("post", "/api/v1/templates/preview"),
    ("get", "/api/v1/groups"),
    ("get", "/api/v1/groups/{name}"),
    ("put", "/api/v1/groups/{name}"),
    ("post", "/api/v1/groups/{name}/start"),
    ("post", "/api/v1/groups/{name}/stop"),
    ("post", "/api/v1/groups/{name}/scale"),
    ("get", "/api/v1/agents"),
    ("post", "/api/v1/enrollment-tokens"),
    ("post", "/api/v1/agents/enroll"),
    ("post", "/api/v1/agents/{agent_id}/certificates"),
    ("get", "/api/v1/health"),
    ("get", "/api/v1/ready"),
    ("get", "/api/v1/targets/networks"),
    ("post", "/api/v1/targets/networks"),
    ("delete", "/api/v1/targets/networks/{network_id}"),
    ("get", "/api/v1/targets/verifications"),
    ("post", "/api/v1/targets/verifications"),
    ("post", "/api/v1/targets/verifications/{verification_id}/check"),
    ("delete", "/api/v1/targets/verifications/{verification_id}"),
    ("get", "/api/v1/targets/check"),
]


@pytest.fixture
def doc(api: Api) -> dict[str, Any]:
    return api.client.get("/schema/openapi.json").json()


def resolved(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    return doc["components"]["schemas"][ref.rsplit("/", 1)[-1]] if ref else schema


def object_schema(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The object an answer is, or holds a list of."""
    schema = resolved(doc, schema)
    if schema.get("type") == "array":
        schema = resolved(doc, schema["items"])
    return schema


def test_every_2xx_answer_of_the_fleet_routes_has_a_real_schema(doc: dict[str, Any]) -> None:
    vague = []
    for method, path in OPERATIONS:
        answers = {
            code: r for code, r in doc["paths"][path][method]["responses"].items() if code < "300"
        }
        assert answers, f"{method.upper()} {path}: no 2xx answer documented"
        for code, r in answers.items():
            schema = object_schema(doc, r["content"]["application/json"]["schema"])
            if not schema.get("properties") or schema.get("additionalProperties") == {}:
                vague.append(f"{method.upper()} {path} {code}")
    assert vague == []


def test_a_put_documents_its_201_created(doc: dict[str, Any]) -> None:
    for path, kind in (
        ("/api/v1/groups/{name}", "Group"),
        ("/api/v1/templates/{name}", "Template"),
    ):
        answers = doc["paths"][path]["put"]["responses"]
        for code in ("200", "201"):
            ref = answers[code]["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith(f"/{kind}")


def properties(doc: dict[str, Any], name: str) -> set[str]:
    return set(doc["components"]["schemas"][name]["properties"])


def test_the_schemas_name_the_fields_the_appliance_sends(api: Api, doc: dict[str, Any]) -> None:
    fleet.local_agent(api.org.id, capacity=10, mqtt_url="mqtt://127.0.0.1:1")
    template = {
        "transport": {"mqtt": {"url": "mqtt://127.0.0.1:1883", "topic": "lab/{device_id}"}},
        "payload": {"n": {"counter": {}}},
    }
    sent = {
        "Template": api.call("PUT", "/api/v1/templates/t", json=template).json(),
        "Group": api.call("PUT", "/api/v1/groups/g", json={"template": "t", "count": 2}).json(),
        "Agent": api.call("GET", "/api/v1/agents").json()[0],
        "Health": api.call("GET", "/api/v1/health").json(),
        "UrlCheck": api.call(
            "GET", "/api/v1/targets/check", params={"url": "mqtt://127.0.0.1:1883"}
        ).json(),
        "NewVerification": api.call(
            "POST", "/api/v1/targets/verifications", json={"url": "http://127.0.0.1:9"}
        ).json(),
        "Network": api.call(
            "POST", "/api/v1/targets/networks", json={"cidr": "10.9.0.0/16"}
        ).json(),
    }
    for name, answer in sent.items():
        assert set(answer) == properties(doc, name), name
    token = api.call("POST", "/api/v1/enrollment-tokens").json()
    assert set(token) <= properties(doc, "EnrollmentToken")
    assert properties(doc, "EnrollmentToken") - set(token) <= {"warning"}
