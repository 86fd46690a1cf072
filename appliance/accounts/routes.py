"""Users and API tokens of the caller's org (admin), and who am I (anyone)."""

from __future__ import annotations

from litestar import delete, get, post
from litestar.params import FromPath, JSONBody

from appliance import auth
from appliance.accounts import service
from appliance.api import Id, call
from appliance.contract.accounts import (
    CreatedToken,
    CreatedUser,
    DeletedUser,
    Me,
    NewToken,
    NewUser,
    Token,
    User,
)

ADMIN = {"role": "admin", "audited": True}


@get("/api/v1/me")
async def whoami(caller: auth.CallerParam) -> Me:
    """The caller's org, user and role (a UI greys out what the role may not do)."""
    return await call(service.me, caller)


@get("/api/v1/users", opt={"role": "admin"})
async def list_users(caller: auth.CallerParam) -> list[User]:
    return await call(service.list_users, caller.org_id)


@post("/api/v1/users", status_code=201, opt=ADMIN)
async def create_user(caller: auth.CallerParam, data: JSONBody[NewUser]) -> CreatedUser:
    """Create a user; the answer carries their first token, shown this once."""
    return await call(service.create_user, caller, data.name, data.role, superuser=data.superuser)


@delete("/api/v1/users/{user_id:int}", status_code=200, opt=ADMIN)
async def delete_user(caller: auth.CallerParam, user_id: FromPath[Id]) -> DeletedUser:
    """Delete a user and revoke their tokens (never one ranked above you, or yourself)."""
    return await call(service.delete_user, caller, user_id)


@get("/api/v1/tokens", opt={"role": "admin"})
async def list_tokens(caller: auth.CallerParam) -> list[Token]:
    """Every token of the org with its last use; never the secrets."""
    return await call(service.list_tokens, caller.org_id)


@post("/api/v1/tokens", status_code=201, opt=ADMIN)
async def create_token(caller: auth.CallerParam, data: JSONBody[NewToken]) -> CreatedToken:
    """A new API token; the secret is in this answer only."""
    return await call(service.create_token, caller, data.name, data.role, data.user_id)


@delete("/api/v1/tokens/{token_id:int}", status_code=200, opt=ADMIN)
async def revoke_token(caller: auth.CallerParam, token_id: FromPath[Id]) -> Token:
    return await call(service.revoke_token, caller, token_id)


ROUTES = [whoami, list_users, create_user, delete_user, list_tokens, create_token, revoke_token]
