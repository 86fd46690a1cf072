"""Users, roles and API tokens: the rules, the queries and their audit entries.

A token belongs to a user and carries a role no higher than the user's. The
secret is shown once, at creation; only its SHA-256 is stored.
"""

from __future__ import annotations

import re
from typing import Any

import peewee as pw

from appliance import auth, clock, models
from appliance.accounts.models import User
from appliance.audit import service as audit
from appliance.audit.http import actor_of
from appliance.errors import ApplianceError, Conflict, NotFound

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}$")


def check_name(name: str, field: str = "name") -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ApplianceError(
            f"{field}: 1-64 characters: letters, digits and _ . @ + - (not starting with one)"
        )
    return name


def check_role(role: str, field: str = "role") -> str:
    if role not in auth.ROLES:
        raise ApplianceError(f"{field}: must be one of {', '.join(auth.ROLES)}")
    return role


def _iso(value: Any) -> str | None:
    return None if value is None else clock.aware(value).isoformat()


def user_doc(u: User) -> dict[str, Any]:
    return {
        "id": u.id,
        "name": u.name,
        "role": u.role,
        "superuser": u.superuser,
        "created_at": _iso(u.created_at),
    }


def token_doc(t: models.ApiToken, users: dict[int, str] | None = None) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "role": t.role,
        "user_id": t.user_id,
        "user": (users or {}).get(t.user_id) if t.user_id is not None else None,
        "created_at": _iso(t.created_at),
        "last_used_at": _iso(t.last_used_at),
        "revoked_at": _iso(t.revoked_at),
    }


def list_users(org_id: int) -> list[dict[str, Any]]:
    return [user_doc(u) for u in User.select().where(User.org == org_id).order_by(User.id)]


def _new_user(org_id: int, name: str, role: str, *, superuser: bool = False) -> User:
    try:
        with audit.write_transaction():
            return User.create(org=org_id, name=name, role=role, superuser=superuser)
    except pw.IntegrityError:
        raise Conflict(f"name: a user named {name!r} already exists in this org") from None


def create_user(caller: auth.Caller, name: str, role: str) -> dict[str, Any]:
    """A user and a first token for them (the secret is in the answer, once)."""
    check_name(name)
    check_role(role)
    org = models.Org.get_by_id(caller.org_id)
    with audit.write_transaction():
        user = _new_user(org.id, name, role)
        token = auth.create_token(org, f"{name} (first token)", role, user_id=user.id)
        doc = user_doc(user)
        audit.record(
            "user.create",
            actor=actor_of(caller),
            org_id=org.id,
            target=f"user:{user.id}",
            after=doc,
        )
    return {**doc, "token": token}


def _user(org_id: int, user_id: int) -> User:
    user = User.get_or_none(User.id == user_id, User.org == org_id)
    if user is None:
        raise NotFound(f"user {user_id} not found in this org")
    return user


def delete_user(caller: auth.Caller, user_id: int) -> dict[str, Any]:
    """Delete a user and revoke all their tokens. Never yourself or the last admin."""
    with audit.write_transaction():
        user = _user(caller.org_id, user_id)
        if user.id == caller.user_id:
            raise Conflict("you cannot delete your own user; ask another admin")
        if user.role == "admin":
            admins = User.select().where(User.org == caller.org_id, User.role == "admin").count()
            if admins <= 1:
                raise Conflict(f"user {user.name!r} is the org's last admin")
        before = user_doc(user)
        revoked = (
            models.ApiToken.update(revoked_at=models.utcnow())
            .where(models.ApiToken.user_id == user.id, models.ApiToken.revoked_at.is_null())
            .execute()
        )
        user.delete_instance()
        audit.record(
            "user.delete",
            actor=actor_of(caller),
            org_id=caller.org_id,
            target=f"user:{user_id}",
            before=before,
            after={"tokens_revoked": revoked},
        )
    return {**before, "deleted": True, "tokens_revoked": revoked}


def list_tokens(org_id: int) -> list[dict[str, Any]]:
    users = {u.id: u.name for u in User.select(User.id, User.name).where(User.org == org_id)}
    rows = models.ApiToken.select().where(models.ApiToken.org == org_id)
    return [token_doc(t, users) for t in rows.order_by(models.ApiToken.id)]


def create_token(
    caller: auth.Caller, name: str, role: str | None = None, user_id: int | None = None
) -> dict[str, Any]:
    """A new token for ``user_id`` (default: the caller), role at most the user's."""
    check_name(name)
    target_id = user_id if user_id is not None else caller.user_id
    if target_id is None:
        raise ApplianceError("user_id: required (this token belongs to no user)")
    with audit.write_transaction():
        user = _user(caller.org_id, target_id)
        role = check_role(role) if role is not None else user.role
        if auth.ROLES.index(role) > auth.ROLES.index(user.role):
            raise ApplianceError(
                f"role: {role} is above the role of user {user.name!r} ({user.role})"
            )
        org = models.Org.get_by_id(caller.org_id)
        secret = auth.create_token(org, name, role, user_id=user.id)
        row = models.ApiToken.get(models.ApiToken.token_hash == auth.digest(secret))
        doc = token_doc(row, {user.id: user.name})
        audit.record(
            "token.create",
            actor=actor_of(caller),
            org_id=org.id,
            target=f"token:{row.id}",
            after=doc,
        )
    return {**doc, "token": secret}


def revoke_token(caller: auth.Caller, token_id: int) -> dict[str, Any]:
    with audit.write_transaction():
        row = models.ApiToken.get_or_none(
            models.ApiToken.id == token_id, models.ApiToken.org == caller.org_id
        )
        if row is None:
            raise NotFound(f"token {token_id} not found in this org")
        before = token_doc(row)
        if row.revoked_at is None:
            row.revoked_at = models.utcnow()
            row.save()
            audit.record(
                "token.revoke",
                actor=actor_of(caller),
                org_id=caller.org_id,
                target=f"token:{token_id}",
                before=before,
                after=token_doc(row),
            )
    return token_doc(row)


def me(caller: auth.Caller) -> dict[str, Any]:
    org = models.Org.get_by_id(caller.org_id)
    return {
        "org": org.name,
        "org_id": org.id,
        "user": caller.user_name or None,
        "user_id": caller.user_id,
        "role": caller.role,
        "superuser": caller.superuser,
        "token_id": caller.token_id,
    }


def ensure_admin(org: models.Org, name: str = "admin", *, superuser: bool = False) -> User:
    """The org's named admin user, created when missing."""
    user = User.get_or_none(User.org == org.id, User.name == name)
    if user is None:
        user = User.create(org=org.id, name=name, role="admin", superuser=superuser)
    elif superuser and not user.superuser:
        user.superuser = True
        user.save()
    return user
