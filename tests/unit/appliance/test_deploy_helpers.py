"""Pure pieces of the production install, as table tests: generated broker config,
SMTP URLs, redacted database URLs, pg_dump targets without a password on argv."""

from __future__ import annotations

import pytest

from appliance.backup import PgTarget, _skipped
from appliance.db_errors import redacted
from appliance.fleet import acl
from appliance.notify.smtp import SmtpConfig


def test_mosquitto_conf_binds_client_ids_on_the_control_listener_only() -> None:
    conf = acl.mosquitto_conf(
        folder="/etc/mosquitto/mockmock",
        control=acl.Listen("0.0.0.0", 8883),
        tls=acl.BrokerTLS("/c.pem", "/k.pem"),
        mock=acl.Listen("127.0.0.1", 1884),
    ).splitlines()
    assert conf.index("per_listener_settings true") < conf.index("listener 8883 0.0.0.0")
    control = conf[conf.index("listener 8883 0.0.0.0") : conf.index("listener 1884 127.0.0.1")]
    mock = conf[conf.index("listener 1884 127.0.0.1") :]
    assert {"certfile /c.pem", "keyfile /k.pem", "allow_anonymous false"} <= set(control)
    assert "use_username_as_clientid true" in control
    assert "use_username_as_clientid true" not in mock  # anonymous clients have no username
    assert {"allow_anonymous true", "acl_file /etc/mosquitto/mockmock/acl-mock"} <= set(mock)
    assert "persistence_location /var/lib/mosquitto/" in conf
    assert not any(line.startswith("user ") for line in conf)  # Mosquitto drops to its own
    # Global, before the first listener: a fleet's usage records and their acks are not
    # capped at Mosquitto's default of 20 QoS 1 messages in flight per client.
    first_listener = conf.index("listener 8883 0.0.0.0")
    assert conf.index("max_inflight_messages 1000") < first_listener
    assert conf.index("max_queued_messages 100000") < first_listener


def test_the_bus_asks_brokers_for_a_wide_qos1_window() -> None:
    from paho.mqtt.packettypes import PacketTypes

    from appliance.bus import control

    props = control._receive_maximum()
    assert props.packetType == PacketTypes.CONNECT
    assert props.ReceiveMaximum == control.INFLIGHT >= 1000


def test_mock_acl_never_opens_the_control_bus() -> None:
    lines = set(acl.mosquitto_mock_acl_file().splitlines())
    assert {"topic deny mm/#", "pattern deny mm/#"} <= lines
    assert not any("%u" in line for line in lines)  # no username is checked there


@pytest.mark.parametrize(
    ("url", "want"),
    [
        ("smtp://u%40lab:p%3Ass@mail:587", ("mail", 587, "starttls", "u@lab", "p:ss", "u@lab")),
        ("smtp://mail", ("mail", 587, "starttls", "", "", None)),
        ("smtps://mail", ("mail", 465, "tls", "", "", None)),
        ("smtp://relay?starttls=no", ("relay", 25, "none", "", "", None)),
        ("smtp://relay:2525?starttls=no", ("relay", 2525, "none", "", "", None)),
    ],
)
def test_smtp_urls(url: str, want: tuple) -> None:
    c = SmtpConfig.parse(url)
    host, port, security, user, password, sender = want
    assert (c.host, c.port, c.security, c.username, c.password) == (
        host,
        port,
        security,
        user,
        password,
    )
    if sender:
        assert c.sender == sender
    assert SmtpConfig.parse(url, sender="b@x.test").sender == "b@x.test"


@pytest.mark.parametrize("url", ["http://mail", "smtp://", "smtp://mail:99999", "mail:25"])
def test_bad_smtp_urls_name_the_setting(url: str) -> None:
    with pytest.raises(ValueError, match=r"^smtp_url: "):
        SmtpConfig.parse(url)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://mm:hunter2@db/mm", "postgresql://mm:***@db/mm"),
        (
            "postgresql://mm@db/mm?password=hunter2&sslmode=require",
            "postgresql://mm@db/mm?password=***&sslmode=require",
        ),
        (
            "sqlite:////var/lib/mockmock/mockmock.sqlite3",
            "sqlite:////var/lib/mockmock/mockmock.sqlite3",
        ),
    ],
)
def test_database_urls_are_shown_without_passwords(url: str, shown: str) -> None:
    assert redacted(url) == shown


def test_pg_dump_gets_the_password_in_its_environment_not_argv() -> None:
    t = PgTarget.parse("postgresql://mm:hunter2@db:5433/mm?sslmode=require")
    assert t.url == "postgresql://mm@db:5433/mm?sslmode=require" and t.password == "hunter2"
    assert t.env()["PGPASSWORD"] == "hunter2"
    q = PgTarget.parse("postgresql://mm@/mm?host=/run/postgresql&password=x%26y")
    assert q.url == "postgresql://mm@/mm?host=%2Frun%2Fpostgresql" and q.password == "x&y"


@pytest.mark.parametrize(
    ("name", "skipped"),
    [
        ("bus.secret", False),
        ("admin.token", False),
        ("agent/agent.json", False),
        ("audit.key", False),
        ("mockmock.sqlite3", True),
        ("mockmock.sqlite3-wal", True),
        ("agent/usage-journal.sqlite3", True),
        ("agent/usage-journal.a1.sqlite3-shm", True),
        ("wheels/msgspec-0.22.0-cp311-cp311-manylinux_2_17_x86_64.whl", True),
        (".bus.secret.tmp", True),
        ("localstripe/localstripe.log", True),
    ],
)
def test_which_data_dir_files_a_backup_carries(name: str, skipped: bool) -> None:
    from pathlib import PurePosixPath

    assert _skipped(PurePosixPath(name)) is skipped
