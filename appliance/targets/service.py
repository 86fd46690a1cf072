"""The target policy applied: resolve hosts, grant lab networks, prove control of targets.

Templates are checked when they are saved and again when a group starts (a
grant may have been withdrawn, a proof revoked, or a name may point elsewhere
now). Names are resolved at check time and every address they resolve to must
pass (:mod:`appliance.targets.policy`). Agents resolve names again when they
connect: a name re-pointed after the check is not caught (see README, Security).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec

from agent.errors import ScenarioError
from agent.limits import check_text
from agent.template import SCHEMES
from appliance import models
from appliance.contract.targets import Network, NewVerification, UrlCheck, Verification
from appliance.db import database
from appliance.errors import ApplianceError, Conflict, Forbidden, NotFound
from appliance.targets import policy
from appliance.targets.models import LabNetwork, TargetVerification

WELL_KNOWN = "/.well-known/mockmock/"
FETCH_TIMEOUT_S = 5.0
MAX_TOKEN_BODY = 4096

Resolver = Callable[[str, int], list[policy.Address]]


def resolve(host: str, port: int) -> list[policy.Address]:
    """Every address ``host`` resolves to now (an IP literal is itself); [] if none."""
    found = policy.literal(host)
    if found is not None:
        return [found]
    try:
        infos = socket.getaddrinfo(policy.host_key(host), port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    out: list[policy.Address] = []
    for *_, sockaddr in infos:
        a = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if a not in out:
            out.append(a)
    return out


def lab_networks(org_id: int, rules: policy.Rules) -> list[policy.Network]:
    """The operator's networks and those granted to every org or to this one."""
    granted = LabNetwork.select().where((LabNetwork.org.is_null()) | (LabNetwork.org == org_id))
    return [*rules.lab_networks, *(policy.parse_network(n.cidr) for n in granted)]


def is_verified(org_id: int, host: str) -> bool:
    return (
        TargetVerification.select()
        .where(
            TargetVerification.org == org_id,
            TargetVerification.host == policy.host_key(host),
            TargetVerification.verified_at.is_null(False),
        )
        .exists()
    )


def check_template(
    org_id: int, raw: Any, path: str, rules: policy.Rules, resolver: Resolver = resolve
) -> None:
    """Forbidden (403) naming the field unless every target of ``raw`` is allowed."""
    targets = policy.targets_of(raw, path)
    if not targets:
        return
    lab = lab_networks(org_id, rules)
    for t in targets:
        why = policy.decide(
            t.host, resolver(t.host, t.port), rules, lab, is_verified(org_id, t.host)
        )
        if why is not None:
            raise Forbidden(f"{t.field}: {why}")


def check_url(org_id: int, url: str, rules: policy.Rules) -> UrlCheck:
    """A dry run: would a transport URL be allowed for this org?"""
    t = _target_of_url(url, "url")
    addresses = resolve(t.host, t.port)
    why = policy.decide(
        t.host, addresses, rules, lab_networks(org_id, rules), is_verified(org_id, t.host)
    )
    return UrlCheck(
        url=url,
        host=t.host,
        addresses=[str(a) for a in addresses],
        allowed=why is None,
        reason=why,
    )


def _target_of_url(url: str, field: str) -> policy.Target:
    try:
        check_text(url, field)
    except ScenarioError as e:
        raise ApplianceError(str(e)) from None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ApplianceError(f"{field}: not a URL with a valid host and port: {url!r}") from None
    if parts.scheme not in SCHEMES or not parts.hostname:
        known = ", ".join(f"{s}://" for s in SCHEMES)
        raise ApplianceError(f"{field}: must be a URL with a host ({known}), got {url!r}")
    return policy.Target(field, parts.hostname, port or SCHEMES[parts.scheme][2])


# -- lab networks (superuser grants) -------------------------------------------------


def network_doc(n: LabNetwork) -> Network:
    return Network(
        id=n.id,
        cidr=n.cidr,
        org_id=n.org_id,
        note=n.note,
        source="api",
        created_at=n.created_at.isoformat() + "Z",
        created_by=n.created_by,
    )


def list_networks(caller: Any, rules: policy.Rules) -> list[Network]:
    """The operator's (setting) networks, then the grants the caller may see."""
    q = LabNetwork.select().order_by(LabNetwork.id)
    if not caller.superuser:
        q = q.where((LabNetwork.org.is_null()) | (LabNetwork.org == caller.org_id))
    setting = [
        Network(id=None, cidr=str(n), org_id=None, note="", source="setting")
        for n in rules.lab_networks
    ]
    return setting + [network_doc(n) for n in q]


def add_network(cidr: str, org_id: int | None, note: str, actor: str) -> Network:
    try:
        net = policy.parse_network(cidr)
    except ValueError as e:
        raise ApplianceError(f"cidr: {e}") from None
    if org_id is not None and models.Org.get_or_none(models.Org.id == org_id) is None:
        raise NotFound(f"org_id: org {org_id} not found")
    row = LabNetwork.create(org=org_id, cidr=str(net), note=note, created_by=actor)
    return network_doc(row)


def delete_network(network_id: int) -> Network:
    row = LabNetwork.get_or_none(LabNetwork.id == network_id)
    if row is None:
        raise NotFound(f"lab network {network_id} not found")
    doc = network_doc(row)
    row.delete_instance()
    return doc


# -- proofs of control (ACME http-01 style) ------------------------------------------


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def verification_doc(v: TargetVerification) -> Verification:
    return Verification(
        id=v.id,
        host=v.host,
        url=v.url,
        token_id=v.token_id,
        well_known_url=f"{v.url}{WELL_KNOWN}{v.token_id}",
        verified=v.verified_at is not None,
        verified_at=v.verified_at.isoformat() + "Z" if v.verified_at else None,
        checked_at=v.checked_at.isoformat() + "Z" if v.checked_at else None,
        last_error=v.last_error or None,
        created_at=v.created_at.isoformat() + "Z",
        created_by=v.created_by,
    )


def list_verifications(org_id: int) -> list[Verification]:
    q = TargetVerification.select().where(TargetVerification.org == org_id)
    return [verification_doc(v) for v in q.order_by(TargetVerification.id)]


def begin_verification(org_id: int, url: str, actor: str) -> NewVerification:
    """Issue an org-specific token for the host of ``url`` (shown in this answer only)."""
    t = _target_of_url(url, "url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ApplianceError(
            f"url: the token is fetched over http:// or https://, got {parts.scheme}://"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ApplianceError("url: give scheme://host[:port] only; the path is the well-known one")
    base = f"{parts.scheme}://{parts.netloc}"
    if len(policy.host_key(t.host)) > 253 or len(base) > 255:
        raise ApplianceError("url: a host name has at most 253 characters")
    why = policy.never(t.host, resolve(t.host, t.port))
    if why is not None:
        raise Forbidden(f"url: {why}")
    token = "mmt_" + secrets.token_urlsafe(32)
    row = TargetVerification.create(
        org=org_id,
        host=policy.host_key(t.host),
        url=base,
        token_id=secrets.token_urlsafe(16),
        token_hash=_hash(token),
        created_by=actor,
    )
    doc = verification_doc(row)
    return NewVerification(
        **msgspec.structs.asdict(doc),
        token=token,
        instructions=(
            f"serve the token as the whole body of GET {doc.well_known_url}, "
            f"then POST /api/v1/targets/verifications/{row.id}/check"
        ),
    )


def _get_verification(org_id: int, verification_id: int) -> TargetVerification:
    row = TargetVerification.get_or_none(
        TargetVerification.id == verification_id, TargetVerification.org == org_id
    )
    if row is None:
        raise NotFound(f"verification {verification_id} not found")
    return row


def check_verification(org_id: int, verification_id: int) -> Verification:
    """Fetch the well-known URL; the host is verified for the org when it serves the token."""
    row = _get_verification(org_id, verification_id)
    url = f"{row.url}{WELL_KNOWN}{row.token_id}"
    problem = _fetch_problem(row, url)
    now = models.utcnow()
    with database.atomic():
        row.checked_at = now
        row.last_error = problem or ""
        if problem is None:
            row.verified_at = now
        row.save()
    if problem is not None:
        raise Conflict(f"{url}: {problem}; serve the token there and check again")
    return verification_doc(row)


def _fetch_problem(row: TargetVerification, url: str) -> str | None:
    parts = urlsplit(row.url)
    why = policy.never(row.host, resolve(row.host, parts.port or 80))
    if why is not None:
        return why
    try:
        # No proxies from the environment, no redirects: the host itself must answer.
        with (
            httpx.Client(timeout=FETCH_TIMEOUT_S, trust_env=False) as http,
            http.stream("GET", url, follow_redirects=False) as r,
        ):
            if r.status_code != 200:
                return f"answered {r.status_code}, not 200"
            body = b""
            for chunk in r.iter_bytes():
                body += chunk
                if len(body) > MAX_TOKEN_BODY:
                    return f"answered more than {MAX_TOKEN_BODY} bytes"
    except httpx.HTTPError as e:
        return f"not reachable ({type(e).__name__})"
    served = body.decode("utf-8", "replace").strip()
    if not hmac.compare_digest(_hash(served), row.token_hash):
        return "did not serve this verification's token"
    return None


def revoke_verification(org_id: int, verification_id: int) -> Verification:
    row = _get_verification(org_id, verification_id)
    doc = verification_doc(row)
    row.delete_instance()
    return doc
