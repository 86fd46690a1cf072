"""Lab networks (superuser grants), proofs of control (org admins) and a dry-run check."""

from __future__ import annotations

from typing import Annotated

from litestar import delete, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, Parameter

from appliance import auth
from appliance.api import Id, call
from appliance.audit.http import actor_of
from appliance.contract.targets import (
    Network,
    NewNetwork,
    NewVerification,
    UrlCheck,
    Verification,
    VerificationRequest,
)
from appliance.targets import service

ADMIN = {"role": "admin"}
SUPER = {"role": "admin", "superuser": True}


@get("/api/v1/targets/networks")
async def list_networks(caller: auth.CallerParam, state: State) -> list[Network]:
    """Lab networks mock traffic may reach: MOCKMOCK_LAB_NETWORKS, then granted ones."""
    return await call(service.list_networks, caller, state.targets)


@post("/api/v1/targets/networks", status_code=201, opt=SUPER)
async def add_network(caller: auth.CallerParam, data: JSONBody[NewNetwork]) -> Network:
    """Grant a lab network to every org, or to one (``org_id``); superusers only."""
    return await call(service.add_network, data.cidr, data.org_id, data.note, actor_of(caller))


@delete("/api/v1/targets/networks/{network_id:int}", status_code=200, opt=SUPER)
async def delete_network(caller: auth.CallerParam, network_id: FromPath[Id]) -> Network:
    return await call(service.delete_network, network_id)


@get("/api/v1/targets/verifications", opt=ADMIN)
async def list_verifications(caller: auth.CallerParam) -> list[Verification]:
    """This org's proofs of control, verified or pending."""
    return await call(service.list_verifications, caller.org_id)


@post("/api/v1/targets/verifications", status_code=201, opt=ADMIN)
async def begin_verification(
    caller: auth.CallerParam, data: JSONBody[VerificationRequest]
) -> NewVerification:
    """A token (shown once) for the host of ``url`` to serve at the well-known path."""
    return await call(service.begin_verification, caller.org_id, data.url, actor_of(caller))


@post("/api/v1/targets/verifications/{verification_id:int}/check", status_code=200, opt=ADMIN)
async def check_verification(
    caller: auth.CallerParam, verification_id: FromPath[Id]
) -> Verification:
    """Fetch the well-known URL now; 409 with the reason when the token is not served."""
    return await call(service.check_verification, caller.org_id, verification_id)


@delete("/api/v1/targets/verifications/{verification_id:int}", status_code=200, opt=ADMIN)
async def revoke_verification(
    caller: auth.CallerParam, verification_id: FromPath[Id]
) -> Verification:
    """The host is no longer verified for this org (running groups keep running)."""
    return await call(service.revoke_verification, caller.org_id, verification_id)


@get("/api/v1/targets/check")
async def check_url(
    caller: auth.CallerParam,
    state: State,
    url: Annotated[str, Parameter(min_length=1, max_length=1024)],
) -> UrlCheck:
    """May a template send to this transport URL (mqtt://, mqtts://, http://, https://)?"""
    return await call(service.check_url, caller.org_id, url, state.targets)


ROUTES = [
    list_networks,
    add_network,
    delete_network,
    list_verifications,
    begin_verification,
    check_verification,
    revoke_verification,
    check_url,
]
