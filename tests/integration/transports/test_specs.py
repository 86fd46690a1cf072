"""Transport keys of the template: what is accepted, and the exact path of what is not."""

from __future__ import annotations

from typing import Any

import pytest

from agent.errors import ScenarioError
from tests.integration.transports.conftest import Certs, transport_of


def rejected(kind: str, doc: dict[str, Any]) -> str:
    with pytest.raises(ScenarioError) as e:
        transport_of(kind, doc)
    return str(e.value)


def test_http_url_becomes_host_port_and_path_pattern() -> None:
    spec = transport_of(
        "http",
        {
            "url": "https://ingest.lab:8443/v1/{group}/{device_id}?k=1",
            "method": "PATCH",
            "headers": {"X-Device": "{device_id}", "Authorization": "Bearer x"},
            "connections": 2,
            "timeout": "2s",
        },
    )
    assert (spec.host, spec.port, spec.tls) == ("ingest.lab", 8443, True)
    assert spec.path == "/v1/{group}/{device_id}?k=1"
    assert (spec.method, spec.connections, spec.timeout_ms) == ("PATCH", 2, 2000)
    assert transport_of("http", {"url": "http://h"}).path == "/"
    assert transport_of("http", {"url": "http://h"}).port == 80


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"url": "ftp://h/x"}, "http.url: scheme must be http:// or https://"),
        ({"url": "http:///x"}, "http.url: missing host"),
        ({"url": "http://h/{serial}"}, "http.url: unknown placeholder {serial}"),
        ({"url": "http://h", "method": "DELETE"}, "http.method: must be one of"),
        ({"url": "http://h", "headers": {"X": "{index}"}}, "http.headers.X: the only placeholder"),
        ({"url": "http://h", "headers": {"Content-Length": "1"}}, "headers.Content-Length: set by"),
        ({"url": "http://h", "headers": {"Bad Name": "1"}}, "headers.Bad Name: not a valid"),
        ({"url": "http://h", "connections": 0}, "http.connections: must be >= 1"),
        ({"url": "http://h", "timeout": "0ms"}, "http.timeout: must be at least 1ms"),
        ({"url": "http://h", "ca": "/etc/hostname"}, "http.ca: only with TLS"),
        ({"url": "https://h", "ca": "/etc/ssl/certs/ca.pem"}, "http.ca: must be PEM text"),
    ],
)
def test_bad_http_keys_name_their_path(doc: dict[str, Any], message: str) -> None:
    assert message in rejected("http", doc)


def test_mqtt_tls_material_is_inline_pem(certs: Certs) -> None:
    ca, cert, key = (
        certs.ca.read_text(),
        certs.client_cert.read_text(),
        certs.client_key.read_text(),
    )
    base = {"url": "mqtts://h", "topic": "t"}
    spec = transport_of("mqtt", {**base, "ca": ca, "cert": cert, "key": key})
    assert (spec.tls, spec.ca, spec.cert, spec.key) == (True, ca, cert, key)
    # A path is never read, whether the file exists or not (no oracle either).
    for path in (str(certs.client_cert), "/no/such/file"):
        assert "mqtt.cert: must be PEM text" in rejected("mqtt", {**base, "cert": path, "key": key})
    assert "mqtt.ca: no certificate in it" in rejected("mqtt", {**base, "ca": key})
    assert "mqtt.key: no private key in it" in rejected("mqtt", {**base, "cert": cert, "key": ca})
    assert "mqtt.cert: no private key in it" in rejected("mqtt", {**base, "cert": cert})
    assert "mqtt.key: needs cert" in rejected("mqtt", {**base, "key": key})
    plain = {"url": "mqtt://h", "topic": "t"}
    assert "mqtt.insecure: only with TLS" in rejected("mqtt", {**plain, "insecure": True})
