"""Where mock traffic may go: the target policy as pure rules (no DNS, no database).

A template's transport names one host. The appliance lets a template be saved,
and a group be started, only when every address that host resolves to is allowed:

1. never: link-local addresses (169.254.0.0/16, fe80::/10), the cloud metadata
   services (by address and by name) and the unspecified address;
2. loopback (127.0.0.0/8, ::1), unless the operator switched it off;
3. addresses inside a lab network (``MOCKMOCK_LAB_NETWORKS``, or granted by a
   superuser through ``/api/v1/targets/networks``);
4. anything else only when the host's owner proved control for this org (the
   host served an org-specific token at ``/.well-known/mockmock/<token-id>``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from agent.template import SCHEMES

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

LINK_LOCAL: tuple[Network, ...] = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
)
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, Oracle, DigitalOcean
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure wire server
    )
)
METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
    }
)


@dataclass(frozen=True)
class Rules:
    """The operator's part of the policy (settings); the database adds grants and proofs."""

    lab_networks: tuple[Network, ...] = ()
    allow_loopback: bool = True

    @classmethod
    def parse(cls, lab_networks: str, allow_loopback: bool = True) -> Rules:
        """``10.0.0.0/8,192.168.0.0/16``; ValueError naming a bad entry."""
        return cls(tuple(parse_networks(lab_networks)), allow_loopback)


@dataclass(frozen=True)
class Target:
    field: str
    """Where the template names it: ``templates.X.transport.mqtt.url``."""
    host: str
    port: int


def parse_network(text: str) -> Network:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not a network (e.g. 10.0.0.0/8)") from None


def parse_networks(text: str) -> list[Network]:
    return [parse_network(part) for part in text.split(",") if part.strip()]


def host_key(host: str) -> str:
    """The form hosts are compared and stored in: lower case, no trailing dot or brackets."""
    return host.strip().strip("[]").rstrip(".").lower()


def literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host_key(host))
    except ValueError:
        return None


def _plain(address: Address) -> Address:
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped if mapped is not None else address


def never(host: str, addresses: Iterable[Address]) -> str | None:
    """Why ``host`` may never be a target (link-local, metadata), or None."""
    if host_key(host) in METADATA_NAMES:
        return f"host {host} is a cloud metadata service; never allowed"
    for raw in addresses:
        a = _plain(raw)
        via = "" if literal(host) == raw else f" (resolves to {a})"
        if a in METADATA_ADDRESSES:
            return f"host {host}{via} is a cloud metadata address; never allowed"
        if any(a in n for n in LINK_LOCAL):
            return f"host {host}{via} is link-local; never allowed"
        if a.is_unspecified:
            return f"host {host}{via} is the unspecified address; never allowed"
    return None


def decide(
    host: str,
    addresses: Sequence[Address],
    rules: Rules,
    lab: Sequence[Network],
    verified: bool,
) -> str | None:
    """None when traffic to ``host`` is allowed; otherwise why not, in one line.

    ``lab`` holds every lab network that applies to the org (the rules' and the grants');
    ``verified`` says whether the org proved control of ``host``.
    """
    refused = never(host, addresses)
    if refused is not None:
        return refused
    if not addresses:
        return f"host {host} does not resolve (the appliance checks where a name points)"
    outside = [
        a
        for a in map(_plain, addresses)
        if not (rules.allow_loopback and a.is_loopback) and not any(a in n for n in lab)
    ]
    if not outside or verified:
        return None
    via = "" if literal(host) is not None else f" ({outside[0]})"
    return (
        f"host {host}{via} is outside the lab networks and not verified for this org "
        "(POST /api/v1/targets/verifications proves you control it)"
    )


def targets_of(raw: Any, path: str) -> list[Target]:
    """The hosts a template document sends to, with the field that names each.

    Lenient: a malformed transport is the template parser's to report."""
    transport = raw.get("transport") if isinstance(raw, dict) else None
    if not isinstance(transport, dict):
        return []
    found: list[Target] = []
    for kind in ("mqtt", "http"):
        doc = transport.get(kind)
        if not isinstance(doc, dict):
            continue
        where = f"{path}.transport.{kind}"
        url = doc.get("url")
        if isinstance(url, str):
            try:
                parts = urlsplit(url)
                port = parts.port
            except ValueError:
                continue
            if parts.hostname:
                default = SCHEMES.get(parts.scheme, ("", False, 0))[2]
                found.append(Target(f"{where}.url", parts.hostname, port or default))
        elif isinstance(doc.get("host"), str):
            port = doc.get("port")
            found.append(
                Target(f"{where}.host", doc["host"], port if isinstance(port, int) else 1883)
            )
    return found
