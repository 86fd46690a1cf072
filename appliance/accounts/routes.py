"""Users and API tokens of the caller's org (admin), and who am I (anyone)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import delete, get, post
from litestar.params import FromPath, JSONBody

from appliance import auth
from appliance.accounts import service
from appliance.api import MAX_ID, Id, call

ADMIN = {"role": "admin", "audited": True}


class NewUser(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    role: str = "viewer"
    superuser: bool = False
    """Another appliance superuser (role admin); only a superuser may make one."""


class NewToken(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    role: str | None = None
    """At most the user's role; default: the user's role."""
    user_id: Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)] | None = None
    """Whose token; default: the caller's own user."""


@get("/api/v1/me")
async def whoami(caller: auth.CallerParam) -> dict[str, Any]:
    """The caller's org, user and role (a UI greys out what the role may not do)."""
    return await call(service.me, caller)


@get("/api/v1/users", opt={"role": "admin"})
async def list_users(caller: auth.CallerParam) -> list[dict[str, Any]]:
    return await call(service.list_users, caller.org_id)


@post("/api/v1/users", status_code=201, opt=ADMIN)
async def create_user(caller: auth.CallerParam, data: JSONBody[NewUser]) -> dict[str, Any]:
    """Create a user; the answer carries their first token, shown this once."""
    return await call(service.create_user, caller, data.name, data.role, superuser=data.superuser)


@delete("/api/v1/users/{user_id:int}", status_code=200, opt=ADMIN)
async def delete_user(caller: auth.CallerParam, user_id: FromPath[Id]) -> dict[str, Any]:
    """Delete a user and revoke their tokens (never one ranked above you, or yourself)."""
    return await call(service.delete_user, caller, user_id)


@get("/api/v1/tokens", opt={"role": "admin"})
async def list_tokens(caller: auth.CallerParam) -> list[dict[str, Any]]:
    """Every token of the org with its last use; never the secrets."""
    return await call(service.list_tokens, caller.org_id)


@post("/api/v1/tokens", status_code=201, opt=ADMIN)
async def create_token(caller: auth.CallerParam, data: JSONBody[NewToken]) -> dict[str, Any]:
    """A new API token; the secret is in this answer only."""
    return await call(service.create_token, caller, data.name, data.role, data.user_id)


@delete("/api/v1/tokens/{token_id:int}", status_code=200, opt=ADMIN)
async def revoke_token(caller: auth.CallerParam, token_id: FromPath[Id]) -> dict[str, Any]:
    return await call(service.revoke_token, caller, token_id)


ROUTES = [whoami, list_users, create_user, delete_user, list_tokens, create_token, revoke_token]
