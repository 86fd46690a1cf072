"""A client id belongs to its account on the embedded broker: no take-over.

An MQTT broker gives a client id to whoever connects with it last and drops the
previous holder. Agents' ids are predictable (``mm-agent-<id>``), so without a
binding any agent (or anyone at all, with any password: amqtt acted on the id
before the authentication result counted) could knock another agent off the bus,
and by doing it again and again past the offline grace have its ranges moved.
"""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest

from agent import wire
from tests.fixtures.ports import HOST
from tests.integration.test_bus_isolation import (  # noqa: F401 - `embedded` is a fixture
    QUIET,
    Bus,
    Creds,
    collect,
    embedded,
    publish,
)


def connect(bus: Bus, who: Creds, identifier: str) -> aiomqtt.Client:
    return aiomqtt.Client(
        HOST,
        bus.port,
        identifier=identifier,
        username=who.username,
        password=who.password,
        protocol=aiomqtt.ProtocolVersion.V311,
    )


async def refused(bus: Bus, who: Creds, identifier: str) -> bool:
    try:
        async with connect(bus, who, identifier):
            return False
    except aiomqtt.MqttError:
        return True


async def test_nobody_can_take_an_agents_client_id(embedded: Bus) -> None:  # noqa: F811
    bus = embedded
    victim_id = wire.agent_client_id(bus.a)
    desired = wire.topic(bus.a, wire.DESIRED)
    async with asyncio.timeout(60), connect(bus, bus.agent_a, victim_id) as victim:
        await victim.subscribe(desired, qos=1)
        # Another agent, an anonymous client, and the victim's own username with a
        # wrong password all try the victim's client id.
        assert await refused(bus, bus.agent_b, victim_id)
        assert await refused(bus, Creds(), victim_id)
        assert await refused(bus, Creds(bus.agent_a.username, "wrong"), victim_id)
        # The victim never noticed: still connected, still hearing its own channel.
        await publish(bus.port, bus.appliance, desired, b"still here")
        assert (desired, b"still here") in await collect(victim, QUIET)


@pytest.mark.parametrize(
    ("who", "identifier", "allowed"),
    [
        ("agent_a", "own", True),
        ("agent_a", "random", False),  # an agent account connects only as itself
        ("agent_a", "appliance", False),
        ("anonymous", "appliance", False),  # the control bus's ids are reserved
        ("anonymous", "random", True),  # mock traffic
        ("appliance", "appliance", True),
        ("appliance", "own", False),  # even the appliance does not pose as an agent
    ],
)
async def test_each_account_connects_only_with_its_own_ids(
    embedded: Bus,  # noqa: F811
    who: str,
    identifier: str,
    allowed: bool,
) -> None:
    creds = {"agent_a": embedded.agent_a, "anonymous": Creds(), "appliance": embedded.appliance}
    ids = {
        "own": wire.agent_client_id(embedded.a),
        "random": "lab-thermo-00001",
        "appliance": wire.APPLIANCE_CLIENT_PREFIX + "x1",
    }
    async with asyncio.timeout(30):
        assert await refused(embedded, creds[who], ids[identifier]) is not allowed
