"""Transport keys of the template: what is accepted, and the exact path of what is not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.errors import ScenarioError
from tests.integration.transports.conftest import transport_of


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
        ({"url": "https://h", "ca": "/no/such/ca.pem"}, "http.ca: file not found"),
    ],
)
def test_bad_http_keys_name_their_path(doc: dict[str, Any], message: str) -> None:
    assert message in rejected("http", doc)


def test_mqtt_tls_files(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-")
    base = {"url": "mqtts://h", "topic": "t"}
    spec = transport_of("mqtt", {**base, "ca": str(ca), "cert": str(ca), "key": str(ca)})
    assert (spec.tls, spec.ca, spec.cert, spec.key) == (True, str(ca), str(ca), str(ca))
    assert "mqtt.cert: file not found" in rejected("mqtt", {**base, "cert": str(tmp_path / "x")})
    assert "mqtt.key: needs cert" in rejected("mqtt", {**base, "key": str(ca)})
    plain = {"url": "mqtt://h", "topic": "t"}
    assert "mqtt.insecure: only with TLS" in rejected("mqtt", {**plain, "insecure": True})
