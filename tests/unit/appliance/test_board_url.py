"""The URLs a board is told at enrollment: reachable, never loopback when serving a network."""

from __future__ import annotations

import pytest

from appliance.config import Settings
from appliance.fleet import credentials
from appliance.install.script import safe_base_url


def settings(**kw: object) -> Settings:
    return Settings(**kw)  # type: ignore[arg-type]


def test_public_url_wins() -> None:
    s = settings(http_host="0.0.0.0", public_url="https://mockmock.lab/")
    got = credentials.board_url(s, host_header="127.0.0.1:8383")
    assert got == credentials.BoardURL("https://mockmock.lab")


def test_a_specific_bind_address_is_what_boards_reach() -> None:
    got = credentials.board_url(settings(http_host="192.168.7.2", http_port=9000))
    assert got == credentials.BoardURL("http://192.168.7.2:9000")
    v6 = credentials.board_url(settings(http_host="fd00::2"))
    assert v6.url == "http://[fd00::2]:8383"


def test_loopback_only_api_says_boards_cannot_reach_it() -> None:
    got = credentials.board_url(settings())
    assert got.url == "http://127.0.0.1:8383"
    assert "--http-host 0.0.0.0" in got.warning and "MOCKMOCK_PUBLIC_URL" in got.warning


def test_every_interface_uses_the_host_the_admin_used() -> None:
    got = credentials.board_url(settings(http_host="0.0.0.0"), host_header="lab-server:8383")
    assert got == credentials.BoardURL("http://lab-server:8383")
    tls = settings(http_host="::", tls_cert="/x.pem", tls_key="/x.key")
    assert credentials.board_url(tls, host_header="lab-server:8443").url == (
        "https://lab-server:8443"
    )


@pytest.mark.parametrize("host", ["127.0.0.1:8383", "localhost:8383", "[::1]:8383", ""])
def test_every_interface_never_hands_out_loopback(
    monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    monkeypatch.setattr(credentials.socket, "getfqdn", lambda: "appliance.lab")
    got = credentials.board_url(settings(http_host="0.0.0.0"), host_header=host)
    assert got.url == "http://appliance.lab:8383" and "MOCKMOCK_PUBLIC_URL" in got.warning

    monkeypatch.setattr(credentials.socket, "getfqdn", lambda: "localhost")
    monkeypatch.setattr(credentials, "_outbound_address", lambda: "10.1.2.3")
    got = credentials.board_url(settings(http_host="0.0.0.0"), host_header=host)
    assert got.url == "http://10.1.2.3:8383" and got.warning


def test_a_hostile_host_header_never_reaches_the_command(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(credentials.socket, "getfqdn", lambda: "appliance.lab")
    for evil in ("x;rm -rf ~:1", "x$(id):1", "x`id`", "a b", "x'y"):
        got = credentials.board_url(settings(http_host="0.0.0.0"), host_header=evil)
        assert got.url == "http://appliance.lab:8383", evil
        assert safe_base_url(f"http://{evil}") == ""


def test_install_command_is_the_one_liner() -> None:
    assert credentials.install_command("http://lab:8383", "mme_x") == (
        "curl -sfL http://lab:8383/agent/install.sh | sudo sh -s -- --token mme_x"
    )


def test_a_loopback_broker_is_named_by_the_host_a_remote_board_used() -> None:
    s = settings(http_host="0.0.0.0", mqtt_url="mqtts://app:secret@127.0.0.1:8883")
    remote = credentials.board_mqtt_url(s, host_header="lab:8383", client_host="10.0.0.7")
    assert remote == "mqtts://lab:8883"  # and never the appliance's own credentials
    local = credentials.board_mqtt_url(s, host_header="127.0.0.1:8383", client_host="127.0.0.1")
    assert local == "mqtts://127.0.0.1:8883"
    explicit = settings(mqtt_url="mqtt://127.0.0.1:1", agent_mqtt_url="mqtt://broker.lab:1884")
    assert (
        credentials.board_mqtt_url(explicit, host_header="lab:8383", client_host="10.0.0.7")
        == "mqtt://broker.lab:1884"
    )
