"""Users, API tokens and who-am-I (``/api/v1/me``, ``/users``, ``/tokens``)."""

from __future__ import annotations

from typing import Annotated

import msgspec

MAX_ID = 2**31 - 1
"""A row id's bound, as ``appliance.api.MAX_ID`` (this module imports nothing of the server)."""
BodyId = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]


class NewUser(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    role: str = "viewer"
    superuser: bool = False
    """Another appliance superuser (role admin); only a superuser may make one."""


class NewToken(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    role: str | None = None
    """At most the user's role; default: the user's role."""
    user_id: BodyId | None = None
    """Whose token; default: the caller's own user."""


class Me(msgspec.Struct, kw_only=True):
    """The caller: a UI greys out what ``role`` may not do."""

    org: str
    org_id: int
    user: str | None
    """None: a token that belongs to no user (from before users existed)."""
    user_id: int | None
    role: str
    superuser: bool
    token_id: int


class User(msgspec.Struct, kw_only=True):
    id: int
    name: str
    role: str
    """viewer | operator | admin"""
    superuser: bool
    created_at: str
    """ISO 8601 with offset."""


class CreatedUser(User, kw_only=True):
    token: str
    """The user's first API token; shown in this answer only."""


class DeletedUser(User, kw_only=True):
    deleted: bool
    tokens_revoked: int


class Token(msgspec.Struct, kw_only=True):
    """An API token as listed: never its secret."""

    id: int
    name: str
    role: str
    user_id: int | None
    """None: a token from before users existed."""
    user: str | None
    """The owner's name, when the answer looked it up."""
    created_at: str
    """ISO 8601 with offset, as are the other times."""
    last_used_at: str | None
    revoked_at: str | None


class CreatedToken(Token, kw_only=True):
    token: str
    """The secret (``mm_...``); shown in this answer only."""
