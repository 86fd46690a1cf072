"""The test fixtures work for real: private Mosquitto brokers and PostgreSQL databases."""

from __future__ import annotations

import asyncio
import uuid

import aiomqtt
import psycopg2
import pytest
from playhouse.db_url import connect as peewee_connect

from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.ports import RESERVED, free_port, port_open
from tests.fixtures.postgres import database_url, temporary_database


def unique_topic(prefix: str = "fixtures") -> str:
    return f"{prefix}/{uuid.uuid4().hex}"


async def round_trip(host: str, port: int, topic: str, payload: bytes, **auth: str) -> bytes:
    """Subscribe, publish at QoS 1, and return what the subscription received."""
    async with asyncio.timeout(15):
        async with (
            aiomqtt.Client(host, port, identifier=f"sub-{uuid.uuid4().hex[:8]}", **auth) as sub,
            aiomqtt.Client(host, port, identifier=f"pub-{uuid.uuid4().hex[:8]}", **auth) as pub,
        ):
            await sub.subscribe(topic, qos=1)
            await pub.publish(topic, payload, qos=1)
            async for message in sub.messages:
                assert str(message.topic) == topic
                return bytes(message.payload)
    raise AssertionError("no message received")


def test_free_ports_are_distinct_and_never_the_well_known_ones() -> None:
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert not set(ports) & RESERVED


# --- Mosquitto ------------------------------------------------------------------


@pytest.mark.mqtt
def test_session_broker_is_private(mosquitto: Mosquitto) -> None:
    assert mosquitto.host == "127.0.0.1"
    assert mosquitto.port not in RESERVED
    assert mosquitto.url == f"mqtt://127.0.0.1:{mosquitto.port}"
    assert mosquitto.running and port_open(mosquitto.host, mosquitto.port)
    assert "max_queued_messages 100000" in mosquitto.config_path.read_text()


@pytest.mark.mqtt
async def test_publish_subscribe_through_session_broker(mosquitto: Mosquitto) -> None:
    got = await round_trip(mosquitto.host, mosquitto.port, unique_topic(), b"hello")
    assert got == b"hello"
    assert "New client connected" in mosquitto.log()


@pytest.mark.mqtt
async def test_stop_and_start_on_the_same_port(mosquitto: Mosquitto) -> None:
    port = mosquitto.port
    mosquitto.stop()
    assert not mosquitto.running
    assert not port_open(mosquitto.host, port)
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(mosquitto.host, port, timeout=2):
            pass
    mosquitto.start()
    assert mosquitto.port == port and mosquitto.running
    assert await round_trip(mosquitto.host, port, unique_topic(), b"back") == b"back"


@pytest.mark.mqtt
def test_stopped_session_broker_is_revived_for_the_next_test_1(mosquitto: Mosquitto) -> None:
    mosquitto.stop()  # and "forgets" to start it again


@pytest.mark.mqtt
def test_stopped_session_broker_is_revived_for_the_next_test_2(mosquitto: Mosquitto) -> None:
    assert mosquitto.running and port_open(mosquitto.host, mosquitto.port)


@pytest.mark.mqtt
async def test_fresh_brokers_are_independent(fresh_mosquitto, mosquitto: Mosquitto) -> None:
    a, b = fresh_mosquitto(), fresh_mosquitto()
    assert len({a.port, b.port, mosquitto.port}) == 3
    a.kill()
    assert not port_open(a.host, a.port)
    assert await round_trip(b.host, b.port, unique_topic(), b"b") == b"b"
    a.start()
    assert await round_trip(a.host, a.port, unique_topic(), b"a") == b"a"


@pytest.mark.mqtt
async def test_fresh_broker_with_users_and_acl(fresh_mosquitto) -> None:
    broker = fresh_mosquitto(
        anonymous=False,
        users={"alice": "s3cret", "bob": "hunter2"},
        acl="user alice\ntopic readwrite alice/#\n\nuser bob\ntopic read bob/#\n",
    )
    alice = {"username": "alice", "password": "s3cret"}
    topic = unique_topic("alice")
    assert await round_trip(broker.host, broker.port, topic, b"mine", **alice) == b"mine"
    with pytest.raises(aiomqtt.MqttError):  # anonymous clients are refused
        async with aiomqtt.Client(broker.host, broker.port, timeout=5):
            pass
    with pytest.raises(aiomqtt.MqttError):  # and so is a wrong password
        async with aiomqtt.Client(
            broker.host, broker.port, username="alice", password="nope", timeout=5
        ):
            pass
    # The ACL holds: bob's publish to alice's topic never reaches her.
    async with asyncio.timeout(15):
        async with (
            aiomqtt.Client(broker.host, broker.port, **alice) as sub,
            aiomqtt.Client(broker.host, broker.port, username="bob", password="hunter2") as bob,
        ):
            await sub.subscribe(topic, qos=1)
            await bob.publish(topic, b"intruder", qos=1)
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(1):
                    async for message in sub.messages:
                        pytest.fail(f"ACL let through {message.payload!r}")


# --- PostgreSQL -----------------------------------------------------------------


@pytest.mark.pg
def test_pg_database_takes_ddl_and_data(pg_database: str) -> None:
    assert pg_database.startswith("postgresql://")
    conn = psycopg2.connect(pg_database)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE thing (id serial PRIMARY KEY, name text NOT NULL)")
            cur.execute("INSERT INTO thing (name) VALUES (%s), (%s)", ("a", "b"))
            cur.execute("SELECT name FROM thing ORDER BY id")
            assert cur.fetchall() == [("a",), ("b",)]
    finally:
        conn.close()
    # The same URL is what the appliance hands to peewee.
    db = peewee_connect(pg_database)
    try:
        assert db.execute_sql("SELECT count(*) FROM thing").fetchone() == (2,)
    finally:
        db.close()


@pytest.mark.pg
def test_pg_databases_are_distinct(pg_database: str, new_pg_database) -> None:
    other = new_pg_database()
    assert other != pg_database
    names = set()
    for url in (pg_database, other):
        conn = psycopg2.connect(url)
        try:
            with conn, conn.cursor() as cur:
                cur.execute("SELECT current_database()")
                names.add(cur.fetchone()[0])
                cur.execute("CREATE TABLE only_once (x int)")  # would clash if shared
        finally:
            conn.close()
    assert len(names) == 2


@pytest.mark.pg
def test_temporary_database_is_dropped_even_with_open_connections(pg_dsn: str) -> None:
    with temporary_database(pg_dsn) as url:
        lingering = psycopg2.connect(url)
        name = url.rsplit("/", 1)[1].split("?")[0]
    admin = psycopg2.connect(pg_dsn)
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            assert cur.fetchone() is None
    finally:
        admin.close()
        lingering.close()


@pytest.mark.parametrize(
    ("dsn", "url"),
    [
        ("postgresql://postgres@127.0.0.1:5555/postgres", "postgresql://postgres@127.0.0.1:5555/x"),
        ("host=db.local port=6000 user=u password=p dbname=d", "postgresql://u:p@db.local:6000/x"),
        (
            "postgresql://u:p%40ss@h/postgres?sslmode=require",
            "postgresql://u@h/x?password=p%40ss&sslmode=require",
        ),
        ("host=/run/pg port=5433 user=u", "postgresql://u@/x?host=%2Frun%2Fpg&port=5433"),
    ],
)
def test_database_url(dsn: str, url: str) -> None:
    assert database_url(dsn, "x") == url
