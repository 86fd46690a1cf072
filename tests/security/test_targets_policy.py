"""Traffic goes only where an admin allowed it; never to link-local or cloud metadata.

Templates used to point HTTP and MQTT traffic anywhere (169.254.169.254, someone
else's server). Now: link-local and metadata are refused always; loopback and lab
networks are allowed; anything else only after its owner served this org's token
at ``/.well-known/mockmock/<token_id>`` (a real HTTP server on 127.0.0.1 here; the
test switches loopback off so 127.0.0.1 counts as "outside the lab").
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from appliance.errors import Forbidden
from appliance.targets import policy
from appliance.targets.service import check_template
from tests.integration.control.conftest import Api
from tests.security.conftest import MakeApi, http_template, mqtt_template
from tests.unit.appliance.factories import online_agent

A = ipaddress.ip_address
LAB = (ipaddress.ip_network("10.0.0.0/8"),)


@pytest.mark.parametrize(
    ("host", "addresses", "verified", "says"),
    [
        ("169.254.169.254", ["169.254.169.254"], True, "cloud metadata address; never"),
        ("169.254.10.1", ["169.254.10.1"], True, "link-local; never allowed"),
        ("fe80::1", ["fe80::1"], True, "link-local; never allowed"),
        ("::ffff:169.254.169.254", ["::ffff:169.254.169.254"], True, "metadata"),
        ("metadata.google.internal", ["10.1.1.1"], True, "cloud metadata service"),
        ("sneaky.example", ["203.0.113.5", "169.254.169.254"], True, "(resolves to 169.254"),
        ("0.0.0.0", ["0.0.0.0"], True, "unspecified address"),
        ("nowhere.invalid", [], True, "does not resolve"),
        ("203.0.113.5", ["203.0.113.5"], False, "outside the lab networks and not verified"),
        ("ingest.example", ["203.0.113.5"], False, "ingest.example (203.0.113.5) is outside"),
        ("203.0.113.5", ["203.0.113.5"], True, None),
        ("10.2.3.4", ["10.2.3.4"], False, None),
        ("127.0.0.1", ["127.0.0.1"], False, None),
        ("localhost", ["127.0.0.1", "::1"], False, None),
    ],
)
def test_policy_table(host: str, addresses: list[str], verified: bool, says: str | None) -> None:
    why = policy.decide(host, [A(a) for a in addresses], policy.Rules(LAB), LAB, verified)
    if says is None:
        assert why is None
    else:
        assert why is not None and says in why, why


def test_loopback_can_be_switched_off_and_lab_networks_parse() -> None:
    rules = policy.Rules.parse("10.0.0.0/8, 192.168.0.0/16", allow_loopback=False)
    assert [str(n) for n in rules.lab_networks] == ["10.0.0.0/8", "192.168.0.0/16"]
    assert policy.decide("127.0.0.1", [A("127.0.0.1")], rules, rules.lab_networks, False)
    with pytest.raises(ValueError, match=r"'10\.0\.0\.300/8' is not a network"):
        policy.Rules.parse("10.0.0.300/8")


def test_a_name_is_judged_by_what_it_resolves_to(api: Api) -> None:
    # DNS cannot be pointed at link-local here: a resolver that answers so stands in.
    doc = http_template("http://lab-gateway.example:8080/x")
    with pytest.raises(Forbidden) as e:
        check_template(
            api.org.id, doc, "templates.t", policy.Rules(), lambda h, p: [A("169.254.169.254")]
        )
    assert str(e.value).startswith(
        "templates.t.transport.http.url: host lab-gateway.example (resolves to 169.254.169.254)"
    )


@pytest.mark.parametrize(
    ("doc", "says"),
    [
        (
            mqtt_template("mqtt://169.254.169.254:1883"),
            "templates.t.transport.mqtt.url: host 169.254.169.254 is a cloud metadata address",
        ),
        (
            http_template("http://169.254.1.1/latest"),
            "templates.t.transport.http.url: host 169.254.1.1 is link-local",
        ),
        (
            http_template("http://[fe80::1]:80/x"),
            "templates.t.transport.http.url: host fe80::1 is link-local",
        ),
        (
            http_template("http://metadata.google.internal/computeMetadata/v1/"),
            "templates.t.transport.http.url: host metadata.google.internal is a cloud metadata",
        ),
        (
            {"transport": {"mqtt": {"host": "169.254.169.254", "topic": "t"}}, "payload": {"a": 1}},
            "templates.t.transport.mqtt.host: host 169.254.169.254",
        ),
        (
            http_template("https://203.0.113.7/ingest"),
            "templates.t.transport.http.url: host 203.0.113.7 is outside the lab networks",
        ),
    ],
)
def test_saving_a_template_refuses_forbidden_targets(api: Api, doc: dict, says: str) -> None:
    r = api.call("PUT", "/api/v1/templates/t", json=doc)
    assert r.status_code == 403, r.text
    assert r.json()["detail"].startswith(says), r.json()["detail"]
    assert api.call("GET", "/api/v1/templates").json() == []


def test_loopback_is_allowed_by_default(api: Api) -> None:
    r = api.call("PUT", "/api/v1/templates/t", json=mqtt_template("mqtt://localhost:1883"))
    assert r.status_code == 201, r.text


class TokenServer:
    """A real HTTP server on 127.0.0.1 serving whatever tokens the test puts in ``served``."""

    def __init__(self) -> None:
        self.served: dict[str, str] = {}
        self.hits: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.hits.append(self.path)
                body = owner.served.get(self.path)
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # mock traffic, if a group runs
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def token_server() -> Iterator[TokenServer]:
    server = TokenServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()
        server.thread.join(5)


def test_a_target_outside_the_lab_needs_its_owner_to_serve_the_orgs_token(
    make_api: MakeApi, token_server: TokenServer
) -> None:
    # Loopback off and a lab that does not hold 127.0.0.1: the test server is "outside".
    api = make_api(allow_loopback=False, lab_networks="10.0.0.0/8")
    online_agent(api.org)
    doc = http_template(f"{token_server.url}/ingest")
    r = api.call("PUT", "/api/v1/templates/t", json=doc)
    assert r.status_code == 403
    assert "host 127.0.0.1 is outside the lab networks and not verified" in r.json()["detail"]

    began = api.call("POST", "/api/v1/targets/verifications", json={"url": token_server.url})
    assert began.status_code == 201, began.text
    v = began.json()
    assert v["host"] == "127.0.0.1" and v["verified"] is False and v["token"].startswith("mmt_")
    path = f"/.well-known/mockmock/{v['token_id']}"
    assert v["well_known_url"] == token_server.url + path

    # Not served yet, then served wrong: a 409 naming the URL and why; nothing verified.
    r = api.call("POST", f"/api/v1/targets/verifications/{v['id']}/check")
    assert r.status_code == 409 and "answered 404" in r.json()["detail"]
    token_server.served[path] = "mmt_someone-elses-token"
    r = api.call("POST", f"/api/v1/targets/verifications/{v['id']}/check")
    assert r.status_code == 409 and "did not serve this verification's token" in r.text
    assert api.call("PUT", "/api/v1/templates/t", json=doc).status_code == 403

    token_server.served[path] = v["token"] + "\n"
    r = api.call("POST", f"/api/v1/targets/verifications/{v['id']}/check")
    assert r.status_code == 200, r.text
    assert r.json()["verified"] is True
    assert token_server.hits.count(path) == 3
    assert api.call("PUT", "/api/v1/templates/t", json=doc).status_code == 201
    assert (
        api.call("PUT", "/api/v1/groups/g", json={"template": "t", "count": 2}).status_code == 201
    )
    assert api.call("POST", "/api/v1/groups/g/start").status_code == 200
    assert api.call("POST", "/api/v1/groups/g/stop").status_code == 200

    # The proof is this org's: the token never appears in lists, and revoking it
    # means the next start is refused (the template was saved while it held).
    listed = api.call("GET", "/api/v1/targets/verifications").json()
    assert [x["verified"] for x in listed] == [True] and "token" not in listed[0]
    assert api.call("DELETE", f"/api/v1/targets/verifications/{v['id']}").status_code == 200
    r = api.call("POST", "/api/v1/groups/g/start")
    assert r.status_code == 403
    assert r.json()["detail"].startswith("templates.t.transport.http.url: host 127.0.0.1 is")


def test_lab_networks_are_granted_by_a_superuser_only(make_api: MakeApi) -> None:
    api = make_api(allow_loopback=False)
    doc = mqtt_template("mqtt://127.0.0.1:1883")
    assert api.call("PUT", "/api/v1/templates/t", json=doc).status_code == 403
    # An org admin below the superuser may not widen the lab.
    org = api.call(
        "POST", "/api/v1/orgs", json={"name": "acme", "currency": "USD", "timezone": "UTC"}
    )
    acme = {"Authorization": f"Bearer {org.json()['admin']['token']}"}
    r = api.client.post("/api/v1/targets/networks", json={"cidr": "0.0.0.0/0"}, headers=acme)
    assert r.status_code == 403
    # The superuser grants 127.0.0.0/8 to the demo org only.
    r = api.call("POST", "/api/v1/targets/networks", json={"cidr": "127.0.0.1/8", "org_id": 1})
    assert r.status_code == 201, r.text
    assert r.json()["cidr"] == "127.0.0.0/8"
    assert api.call("PUT", "/api/v1/templates/t", json=doc).status_code == 201
    r = api.client.put("/api/v1/templates/t", json=doc, headers=acme)
    assert r.status_code == 403 and "outside the lab networks" in r.json()["detail"]
    bad = api.call("POST", "/api/v1/targets/networks", json={"cidr": "10.0.0.300/8"})
    assert bad.status_code == 400 and bad.json()["detail"].startswith("cidr: ")


def test_the_verification_fetch_itself_never_goes_to_link_local(api: Api) -> None:
    r = api.call("POST", "/api/v1/targets/verifications", json={"url": "http://169.254.169.254"})
    assert r.status_code == 403 and "never allowed" in r.json()["detail"]
    r = api.call("POST", "/api/v1/targets/verifications", json={"url": "mqtt://127.0.0.1:1883"})
    assert r.status_code == 400 and r.json()["detail"].startswith("url: the token is fetched")


def test_a_dry_run_says_why(api: Api) -> None:
    r = api.call("GET", "/api/v1/targets/check?url=mqtt://169.254.169.254:1883")
    assert r.status_code == 200
    assert r.json()["allowed"] is False and "never allowed" in r.json()["reason"]
    ok = api.call("GET", "/api/v1/targets/check?url=http://127.0.0.1:8080/x").json()
    assert ok["allowed"] is True and ok["addresses"] == ["127.0.0.1"]
