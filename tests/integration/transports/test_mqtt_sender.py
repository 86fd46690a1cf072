"""The gmqtt data plane against a real Mosquitto, checked by independent clients."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt
import pytest

from agent.transports.base import SenderOptions
from agent.transports.mqtt import MqttSender
from tests.fixtures.mosquitto import FreshMosquitto, Mosquitto
from tests.fixtures.ports import HOST, free_port, wait_port
from tests.integration.transports.conftest import Certs, eventually, transport_of

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(30)]


def mqtt_spec(url: str, **extra: Any) -> Any:
    return transport_of("mqtt", {"url": url, "topic": "t/{device_id}", **extra})


class Listener:
    """An aiomqtt client (not gmqtt: an independent implementation) recording messages."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes, int, bool]] = []

    def payloads(self, topic: str) -> list[bytes]:
        return [p for t, p, _, _ in self.messages if t == topic]


@contextlib.asynccontextmanager
async def listening(
    broker: Mosquitto, *topics: str, qos: int = 1
) -> AsyncIterator[tuple[Listener, aiomqtt.Client]]:
    listener = Listener()
    async with aiomqtt.Client(
        broker.host, broker.port, identifier=f"listener-{uuid.uuid4().hex[:8]}"
    ) as client:
        for topic in topics:
            await client.subscribe(topic, qos=qos)

        async def collect() -> None:
            async for m in client.messages:
                payload = m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()
                listener.messages.append((str(m.topic), payload, m.qos, m.retain))

        task = asyncio.create_task(collect())
        try:
            yield listener, client
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def ids(prefix: str, n: int) -> list[str]:
    tag = uuid.uuid4().hex[:6]
    return [f"{prefix}-{tag}-{i}" for i in range(n)]


async def test_drop_fires_the_will_and_stays_down_until_reconnect(mosquitto: Mosquitto) -> None:
    devices = ids("lwt", 2)
    will_topic = f"wills/{devices[0]}"
    options = SenderOptions(wills=[(will_topic, b"offline", 1, False), None])
    sender = MqttSender(mqtt_spec(mosquitto.url), devices, options)
    async with listening(mosquitto, will_topic, f"t/{devices[0]}") as (listener, _):
        await sender.open()
        try:
            assert sender.is_connected(0) and sender.is_connected(1)
            sender.drop(0)
            assert not sender.is_connected(0)
            assert sender.is_connected(1), "per-device: the other device is not affected"
            await eventually(lambda: listener.payloads(will_topic) == [b"offline"], what="will")
            # gmqtt alone would reconnect after 2 s; the device must stay down.
            await asyncio.sleep(2.5)
            assert not sender.is_connected(0)
            assert not sender.send(0, f"t/{devices[0]}", b"while down")
            assert await sender.reconnect(0)
            assert sender.send(0, f"t/{devices[0]}", b"back")
            await eventually(lambda: listener.payloads(f"t/{devices[0]}") == [b"back"])
        finally:
            await sender.close()
        await asyncio.sleep(0.3)
        assert listener.payloads(will_topic) == [b"offline"], "a clean close sends no will"


async def test_shared_connection_drop_and_reconnect_act_on_every_slot(
    mosquitto: Mosquitto,
) -> None:
    devices = ids("shared-drop", 3)
    will_topic = f"wills/{devices[0]}-shared"
    options = SenderOptions(wills=[(will_topic, b"gone", 0, False), None, None])
    sender = MqttSender(mqtt_spec(mosquitto.url, connection="shared"), devices, options)
    async with listening(mosquitto, will_topic) as (listener, _):
        await sender.open()
        try:
            sender.drop(2)
            assert not any(sender.is_connected(s) for s in range(3))
            await eventually(lambda: listener.payloads(will_topic) == [b"gone"])
            assert await sender.reconnect(1)
            assert all(sender.is_connected(s) for s in range(3))
        finally:
            await sender.close()


@pytest.mark.parametrize("connection", ["per_device", "shared"])
async def test_commands_reach_on_message_with_the_right_slot(
    mosquitto: Mosquitto, connection: str
) -> None:
    devices = ids(f"cmd-{connection}", 3)
    got: list[tuple[int, str, bytes]] = []
    options = SenderOptions(
        subscriptions=[[f"cmd/{d}"] for d in devices] + [],
        on_message=lambda slot, topic, payload: got.append((slot, topic, payload)),
    )
    options.subscriptions[2].append(f"fleet/{devices[0]}/+/all")  # a wildcard too
    sender = MqttSender(mqtt_spec(mosquitto.url, connection=connection), devices, options)
    await sender.open()
    try:
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as commander:
            await commander.publish(f"cmd/{devices[1]}", b"reboot", qos=1)
            await commander.publish(f"fleet/{devices[0]}/x/all", b"wake", qos=1)
            await commander.publish(f"cmd/{devices[0]}", b"status", qos=1)
            await eventually(lambda: len(got) >= 3)
        await asyncio.sleep(0.2)  # nothing more, e.g. a command echoed to other slots
        assert sorted(got) == [
            (0, f"cmd/{devices[0]}", b"status"),
            (1, f"cmd/{devices[1]}", b"reboot"),
            (2, f"fleet/{devices[0]}/x/all", b"wake"),
        ]
    finally:
        await sender.close()


async def test_subscriptions_come_back_after_a_drop(mosquitto: Mosquitto) -> None:
    devices = ids("resub", 1)
    got: list[bytes] = []
    options = SenderOptions(
        subscriptions=[[f"cmd/{devices[0]}"]], on_message=lambda s, t, p: got.append(p)
    )
    sender = MqttSender(mqtt_spec(mosquitto.url), devices, options)
    await sender.open()
    try:
        sender.drop(0)
        assert await sender.reconnect(0)
        await asyncio.sleep(0.2)  # SUBACK
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as commander:
            await commander.publish(f"cmd/{devices[0]}", b"after", qos=1)
            await eventually(lambda: got == [b"after"])
    finally:
        await sender.close()


@pytest.mark.parametrize("qos", [1, 2])
async def test_qos_messages_all_arrive_in_order(mosquitto: Mosquitto, qos: int) -> None:
    devices = ids(f"qos{qos}", 2)
    sender = MqttSender(mqtt_spec(mosquitto.url, qos=qos), devices)
    async with listening(mosquitto, "t/" + devices[0], "t/" + devices[1], qos=qos) as (lis, _):
        await sender.open()
        try:
            for i in range(300):
                assert sender.send(i % 2, f"t/{devices[i % 2]}", b"%d" % i)
            await eventually(
                lambda: len(lis.messages) == 300, what=lambda: f"{len(lis.messages)}/300"
            )
        finally:
            await sender.close()
    assert lis.payloads(f"t/{devices[0]}") == [b"%d" % i for i in range(0, 300, 2)]
    assert {q for _, _, q, _ in lis.messages} == {qos}


async def test_qos0_fast_path_and_per_message_qos_keep_order(mosquitto: Mosquitto) -> None:
    devices = ids("mixed", 1)
    topic = f"t/{devices[0]}"
    sender = MqttSender(mqtt_spec(mosquitto.url, version=5), devices)
    async with listening(mosquitto, topic) as (lis, _):
        await sender.open()
        try:
            for i in range(200):
                assert sender.send(0, topic, b"%d" % i, qos=1 if i % 10 == 0 else None)
            await eventually(
                lambda: len(lis.messages) == 200, what=lambda: f"{len(lis.messages)}/200"
            )
        finally:
            await sender.close()
    assert lis.payloads(topic) == [b"%d" % i for i in range(200)]


async def test_retain_and_big_payloads(mosquitto: Mosquitto) -> None:
    devices = ids("retain", 1)
    topic = f"t/{devices[0]}"
    big = b"x" * 70_000  # a 3-byte remaining length
    sender = MqttSender(mqtt_spec(mosquitto.url, retain=True), devices)
    await sender.open()
    try:
        assert sender.send(0, topic, big)
        await asyncio.sleep(0.3)
    finally:
        await sender.close()
    async with listening(mosquitto, topic) as (lis, _):  # subscribes after the send
        await eventually(lambda: len(lis.messages) == 1)
    assert lis.messages[0][1] == big and lis.messages[0][3] is True


# Mosquitto logs MQTT 3.1.1 as p2 and MQTT 5 as p5.
@pytest.mark.parametrize(("version", "tag"), [("5", "p5"), ("3.1.1", "p2")])
async def test_protocol_version_is_what_the_broker_sees(
    mosquitto: Mosquitto, version: str, tag: str
) -> None:
    devices = ids(f"v{version}", 1)
    sender = MqttSender(mqtt_spec(mosquitto.url, version=version), devices)
    await sender.open()
    try:
        assert sender.is_connected(0)
        await eventually(lambda: f"as {devices[0]} ({tag}," in mosquitto.log(tail=200_000))
    finally:
        await sender.close()


async def connected_count(broker: Mosquitto, expected: int) -> None:
    """Wait until the broker's own $SYS count of connected clients equals ``expected``."""
    seen: list[int] = []
    async with aiomqtt.Client(broker.host, broker.port, identifier="sys-reader") as c:
        await c.subscribe("$SYS/broker/clients/connected")
        async with asyncio.timeout(8):
            async for m in c.messages:
                seen.append(int(bytes(m.payload)))  # type: ignore[arg-type]
                if seen[-1] == expected + 1:  # + the reader itself
                    return
    raise AssertionError(f"broker saw {seen}, wanted {expected} + 1")


@pytest.mark.parametrize(("connection", "connections"), [("per_device", 5), ("shared", 1)])
async def test_shared_is_one_connection_per_device_is_one_each(
    fresh_mosquitto: FreshMosquitto, connection: str, connections: int
) -> None:
    broker = fresh_mosquitto(["sys_interval 1"])
    devices = ids(connection, 5)
    sender = MqttSender(mqtt_spec(broker.url, connection=connection), devices)
    await sender.open()
    try:
        await connected_count(broker, connections)
        log = broker.log(tail=200_000)
        expected_ids = devices if connection == "per_device" else [f"{devices[0]}-shared"]
        assert all(f"as {cid} (" in log for cid in expected_ids)
    finally:
        await sender.close()


async def test_devices_come_back_after_a_broker_restart(
    fresh_mosquitto: FreshMosquitto,
) -> None:
    broker = fresh_mosquitto()
    devices = ids("restart", 4)
    sender = MqttSender(mqtt_spec(broker.url), devices)
    await sender.open()
    try:
        assert all(sender.is_connected(s) for s in range(4))
        broker.stop()
        await eventually(lambda: not any(sender.is_connected(s) for s in range(4)))
        assert not sender.send(0, f"t/{devices[0]}", b"lost")
        broker.start()
        await eventually(lambda: all(sender.is_connected(s) for s in range(4)), timeout=12)
    finally:
        await sender.close()


async def test_unreachable_broker_is_an_error_not_a_hang() -> None:
    port = free_port()  # nothing listens here
    sender = MqttSender(mqtt_spec(f"mqtt://{HOST}:{port}"), ids("nobody", 2))
    try:
        await asyncio.wait_for(sender.open(), 5)
        assert not sender.is_connected(0)
        assert not sender.send(0, "t/x", b"x")
        assert f"{HOST}:{port}" in sender.last_error
    finally:
        await sender.close()


async def test_per_device_credentials(fresh_mosquitto: FreshMosquitto) -> None:
    broker = fresh_mosquitto(anonymous=False, users={"dev-a": "secret-a", "dev-b": "secret-b"})
    options = SenderOptions(
        credentials=[("dev-a", "secret-a"), ("dev-b", "wrong"), None]  # None: the spec's
    )
    spec = mqtt_spec(broker.url, username="dev-b", password="secret-b")
    sender = MqttSender(spec, ["a", "b", "c"], options)
    await sender.open()
    try:
        assert [sender.is_connected(s) for s in range(3)] == [True, False, True]
        assert "CONNACK 0x05 not authorized" in sender.last_error
    finally:
        await sender.close()


# -- TLS ---------------------------------------------------------------------------


@pytest.fixture
def tls_broker(fresh_mosquitto: FreshMosquitto, certs: Certs) -> tuple[Mosquitto, int]:
    """A broker with a plain listener (for the listener) and an mTLS one."""
    tls_port = free_port()
    broker = fresh_mosquitto(
        [
            f"listener {tls_port} {HOST}",
            f"cafile {certs.ca}",
            f"certfile {certs.server_cert}",
            f"keyfile {certs.server_key}",
            "require_certificate true",
        ]
    )
    wait_port(HOST, tls_port, 10)
    return broker, tls_port


async def test_mutual_tls_with_a_test_ca(tls_broker: tuple[Mosquitto, int], certs: Certs) -> None:
    broker, tls_port = tls_broker
    devices = ids("mtls", 2)
    spec = mqtt_spec(
        f"mqtts://{HOST}:{tls_port}",
        ca=certs.ca.read_text(),
        cert=certs.client_cert.read_text(),
        key=certs.client_key.read_text(),
        version=5,
    )
    sender = MqttSender(spec, devices)
    async with listening(broker, "t/#") as (lis, _):
        await sender.open()
        try:
            assert sender.is_connected(0) and sender.is_connected(1), sender.last_error
            sender.send(1, f"t/{devices[1]}", b"over tls")
            await eventually(lambda: lis.payloads(f"t/{devices[1]}") == [b"over tls"])
        finally:
            await sender.close()


async def test_tls_verifies_the_broker_by_default(
    tls_broker: tuple[Mosquitto, int], certs: Certs
) -> None:
    _, tls_port = tls_broker
    # No ca: the system store does not know the test CA.
    spec = mqtt_spec(
        f"mqtts://{HOST}:{tls_port}",
        cert=certs.client_cert.read_text(),
        key=certs.client_key.read_text(),
    )
    sender = MqttSender(spec, ids("untrusted", 1))
    try:
        await sender.open()
        assert not sender.is_connected(0)
        assert "CERTIFICATE_VERIFY_FAILED" in sender.last_error
    finally:
        await sender.close()


async def test_broker_requiring_a_client_cert_refuses_a_device_without_one(
    tls_broker: tuple[Mosquitto, int], certs: Certs
) -> None:
    _, tls_port = tls_broker
    sender = MqttSender(
        mqtt_spec(f"mqtts://{HOST}:{tls_port}", ca=certs.ca.read_text()), ids("nocert", 1)
    )
    try:
        await sender.open()
        assert not sender.is_connected(0)
        assert sender.last_error
    finally:
        await sender.close()
