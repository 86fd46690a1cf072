"""The OpenAPI document names how each operation is authenticated, as the app does it:
an API token, nothing (public), or the agent's own bus account (HTTP Basic)."""

from __future__ import annotations

import base64

from tests.integration.control.conftest import Api

CERTIFICATES = "/api/v1/agents/{agent_id}/certificates"


def test_agent_routes_document_http_basic_and_answer_to_it(api: Api) -> None:
    doc = api.client.get("/schema/openapi.json").json()
    assert doc["components"]["securitySchemes"]["AgentBasic"]["scheme"] == "basic"
    assert doc["paths"][CERTIFICATES]["post"]["security"] == [{"AgentBasic": []}]
    assert doc["paths"]["/api/v1/health"]["get"]["security"] == []
    assert doc["paths"]["/api/v1/groups"]["get"]["security"] == [{"BearerToken": []}]

    token = api.call("POST", "/api/v1/enrollment-tokens").json()["token"]
    agent = api.call("POST", "/api/v1/agents/enroll", None, json={"token": token}).json()
    path = CERTIFICATES.format(agent_id=agent["agent_id"])
    body = {"public_key": "x", "devices": []}
    # The admin's token is not what this operation takes; the agent's account is.
    assert api.call("POST", path, "admin", json=body).status_code == 401
    basic = base64.b64encode(f"{agent['username']}:{agent['password']}".encode()).decode()
    r = api.client.post(path, headers={"Authorization": f"Basic {basic}"}, json=body)
    assert r.status_code == 400 and r.json()["detail"].startswith("devices:"), r.text
