"""Control-bus isolation: an agent touches only its own topics, on either broker.

The same story runs against the embedded amqtt broker (with the appliance's
access plugin) and against a real Mosquitto configured with the files
`mockmock mosquitto-config` generates: agent A can neither read nor write
agent B's topics (live or retained), the appliance can use all of `mm/v1/#`,
anonymous clients can use anything but `mm/#`, and wrong credentials get no
connection at all.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest

from agent import wire
from appliance import models
from appliance.bus.broker import EmbeddedBroker
from appliance.fleet import acl, credentials
from appliance.fleet import service as fleet
from tests.fixtures.ports import HOST, free_port
from tests.fixtures.processes import mockmock

QUIET = 0.8  # how long "nothing arrives" is watched for


@dataclass(frozen=True)
class Creds:
    username: str | None = None
    password: str | None = None


@dataclass(frozen=True)
class Bus:
    port: int
    a: str  # agent ids
    b: str
    agent_a: Creds
    agent_b: Creds
    appliance: Creds


def client_id(who: Creds) -> str:
    """The id each account may connect with (appliance.fleet.acl.may_use_client_id)."""
    if who.username is None:
        return f"t-{uuid.uuid4().hex[:10]}"
    if who.username.startswith(wire.APPLIANCE_CLIENT_PREFIX):
        return f"{wire.APPLIANCE_CLIENT_PREFIX}t-{uuid.uuid4().hex[:10]}"
    return wire.agent_client_id(who.username)  # an agent's username is its id


def client(port: int, who: Creds, **kw: object) -> aiomqtt.Client:
    return aiomqtt.Client(
        HOST,
        port,
        identifier=client_id(who),
        username=who.username,
        password=who.password,
        protocol=aiomqtt.ProtocolVersion.V311,
        **kw,  # type: ignore[arg-type]
    )


async def collect(c: aiomqtt.Client, seconds: float) -> list[tuple[str, bytes]]:
    got: list[tuple[str, bytes]] = []
    try:
        async with asyncio.timeout(seconds):
            async for m in c.messages:
                got.append((str(m.topic), bytes(m.payload)))
    except TimeoutError:
        pass
    return got


async def publish(port: int, who: Creds, topic: str, payload: bytes, retain: bool = False) -> None:
    async with client(port, who) as c:
        await c.publish(topic, payload, qos=1, retain=retain)


async def seen_by(
    port: int,
    reader: Creds,
    topic_filter: str,
    writer: Creds,
    topic: str,
    *,
    retain: bool = False,
) -> list[tuple[str, bytes]]:
    """What ``reader`` subscribed to ``topic_filter`` gets when ``writer`` publishes ``topic``.

    With ``retain`` the message is published (retained) before the reader subscribes.
    """
    payload = uuid.uuid4().hex.encode()
    if retain:
        await publish(port, writer, topic, payload, retain=True)
    async with client(port, reader) as sub:
        await sub.subscribe(topic_filter, qos=1)
        if not retain:
            await publish(port, writer, topic, payload)
        got = await collect(sub, QUIET)
    return [(t, p) for t, p in got if p == payload]


async def check_isolation(bus: Bus) -> None:
    port, a, b = bus.port, bus.a, bus.b
    anon = Creds()
    b_desired = wire.topic(b, wire.DESIRED)
    a_desired = wire.topic(a, wire.DESIRED)

    # The appliance reaches every agent; each agent hears its own channel.
    assert await seen_by(port, bus.agent_a, f"mm/v1/agents/{a}/#", bus.appliance, a_desired)
    assert await seen_by(
        port, bus.appliance, "mm/v1/agents/+/usage", bus.agent_b, wire.topic(b, wire.USAGE)
    )

    # A cannot read B: neither live, nor retained, nor through wildcards.
    assert not await seen_by(port, bus.agent_a, f"mm/v1/agents/{b}/#", bus.appliance, b_desired)
    assert not await seen_by(port, bus.agent_a, "mm/v1/agents/+/desired", bus.appliance, b_desired)
    assert not await seen_by(port, bus.agent_a, "#", bus.appliance, b_desired)
    b_presence = wire.topic(b, wire.PRESENCE)
    assert not await seen_by(port, bus.agent_a, "mm/#", bus.agent_b, b_presence, retain=True)
    # ... while the appliance can read B's retained state.
    assert await seen_by(
        port, bus.appliance, "mm/v1/agents/+/presence", bus.agent_b, b_presence, retain=True
    )

    # A cannot write B: nothing A publishes on B's topics reaches B (or the appliance).
    assert not await seen_by(port, bus.agent_b, f"mm/v1/agents/{b}/#", bus.agent_a, b_desired)
    assert not await seen_by(
        port, bus.appliance, "mm/v1/agents/+/usage", bus.agent_a, wire.topic(b, wire.USAGE)
    )
    # Anonymous clients: free outside mm/, nothing inside it.
    assert await seen_by(port, anon, "lab/#", anon, "lab/x/telemetry")
    assert not await seen_by(port, anon, "#", bus.appliance, b_desired)
    assert not await seen_by(port, anon, "#", bus.agent_b, b_presence, retain=True)
    assert not await seen_by(port, bus.agent_a, f"mm/v1/agents/{a}/#", anon, a_desired)

    # Wrong or unknown credentials: no connection at all.
    for bad in (Creds(a, "wrong"), Creds("nobody", "x"), Creds(bus.appliance.username, "x")):
        with pytest.raises(aiomqtt.MqttError):
            async with client(port, bad):
                pass


# --- the embedded broker ----------------------------------------------------------


@pytest.fixture
async def embedded(appliance_db: str, tmp_path: Path) -> AsyncIterator[Bus]:
    org = models.Org.create(name="acme")
    a = fleet.local_agent(org.id, capacity=10, mqtt_url="mqtt://127.0.0.1:1")
    b = fleet.local_agent(org.id, capacity=10, mqtt_url="mqtt://127.0.0.1:1")
    user, password = credentials.ensure_appliance_user(tmp_path)

    async def verify(username: str, password: str) -> acl.Identity | None:
        return await asyncio.to_thread(credentials.identify, username, password)

    port = free_port()
    broker = EmbeddedBroker(HOST, port, verify)
    await broker.start()
    try:
        yield Bus(
            port,
            a.agent_id,
            b.agent_id,
            Creds(a.username, a.password),
            Creds(b.username, b.password),
            Creds(user, password),
        )
    finally:
        await broker.stop()


async def test_embedded_broker_isolates_agents(embedded: Bus) -> None:
    async with asyncio.timeout(60):
        await check_isolation(embedded)


async def test_embedded_broker_does_not_leak_retained_control_state_to_lab_subscribers(
    embedded: Bus,
) -> None:
    """amqtt replayed other sessions' retained topics to any new client; not any more."""
    presence = wire.topic(embedded.a, wire.PRESENCE)
    async with client(embedded.port, embedded.appliance) as app:
        await app.subscribe("mm/v1/agents/+/presence", qos=1)
        await publish(embedded.port, embedded.agent_a, presence, b"online", retain=True)
        async with client(embedded.port, Creds()) as lab:
            await lab.subscribe("lab/#", qos=1)
            assert await collect(lab, QUIET) == []


async def test_embedded_broker_refuses_a_will_on_another_agents_topic(embedded: Bus) -> None:
    will = aiomqtt.Will(wire.topic(embedded.b, wire.PRESENCE), b"offline", qos=1, retain=True)
    with pytest.raises(aiomqtt.MqttError):
        async with client(embedded.port, embedded.agent_a, will=will):
            pass
    anon_will = aiomqtt.Will(wire.topic(embedded.b, wire.PRESENCE), b"offline", qos=1)
    with pytest.raises(aiomqtt.MqttError):
        async with client(embedded.port, Creds(), will=anon_will):
            pass


# --- a real Mosquitto with the generated files -------------------------------------


@pytest.mark.mqtt
async def test_mosquitto_with_generated_files_isolates_agents(
    appliance_db: str, fresh_mosquitto, tmp_path: Path
) -> None:
    org = models.Org.create(name="acme")
    a = fleet.local_agent(org.id, capacity=10, mqtt_url="mqtt://127.0.0.1:1")
    b = fleet.local_agent(org.id, capacity=10, mqtt_url="mqtt://127.0.0.1:1")
    user, password = credentials.ensure_appliance_user(tmp_path)
    passwd, acl_text, warnings = credentials.mosquitto_files()
    assert warnings == []
    assert password not in passwd and a.password not in passwd  # hashes only
    pw_file = tmp_path / "passwd"
    pw_file.write_text(passwd)
    broker = fresh_mosquitto([f"password_file {pw_file}"], acl=acl_text)
    bus = Bus(
        broker.port,
        a.agent_id,
        b.agent_id,
        Creds(a.username, a.password),
        Creds(b.username, b.password),
        Creds(user, password),
    )
    async with asyncio.timeout(60):
        await check_isolation(bus)


@pytest.mark.mqtt
def test_mosquitto_config_command_writes_files_mosquitto_loads(
    fresh_mosquitto, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    out = tmp_path / "mosq"
    done = subprocess.run(
        mockmock("mosquitto-config", "--out", str(out), "--data-dir", str(data)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert (out / "passwd").stat().st_mode & 0o777 == 0o640  # the broker's group reads it
    user, password = (data / "bus.secret").read_text().strip().split(":", 1)
    assert f"user {user}" in (out / "acl").read_text()
    broker = fresh_mosquitto(
        [f"password_file {out / 'passwd'}", f"acl_file {out / 'acl'}"], anonymous=False
    )

    async def appliance_round_trip() -> list[tuple[str, bytes]]:
        return await seen_by(
            broker.port, Creds(user, password), "mm/v1/#", Creds(user, password), "mm/v1/x"
        )

    assert asyncio.run(appliance_round_trip())
