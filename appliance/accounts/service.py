"""Users, roles and API tokens: the rules, the queries and their audit entries.

A token belongs to a user and carries a role no higher than the user's. The
secret is shown once, at creation; only its SHA-256 is stored.

The appliance superuser is a flag on a user, set once when the appliance is
bootstrapped (:func:`bootstrap_superuser`) or by another superuser; it is never
inferred from a name. Nobody may delete a user, or mint or revoke tokens of a
user, ranked above themselves (viewer < operator < admin < superuser), and the
last superuser cannot be removed.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import peewee as pw

from appliance import auth, models
from appliance.accounts.models import User
from appliance.audit import service as audit
from appliance.audit.http import actor_of
from appliance.contract.accounts import CreatedToken, CreatedUser, DeletedUser, Me, Token
from appliance.contract.accounts import User as UserOut
from appliance.errors import ApplianceError, Conflict, Forbidden, NotFound
from appliance.schedule import clock

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


def user_out(u: User) -> UserOut:
    return UserOut(
        id=u.id,
        name=u.name,
        role=u.role,
        superuser=u.superuser,
        created_at=clock.aware(u.created_at).isoformat(),
    )


def token_out(t: models.ApiToken, users: dict[int, str] | None = None) -> Token:
    return Token(
        id=t.id,
        name=t.name,
        role=t.role,
        user_id=t.user_id,
        user=(users or {}).get(t.user_id) if t.user_id is not None else None,
        created_at=clock.aware(t.created_at).isoformat(),
        last_used_at=_iso(t.last_used_at),
        revoked_at=_iso(t.revoked_at),
    )


def list_users(org_id: int) -> list[UserOut]:
    return [user_out(u) for u in User.select().where(User.org == org_id).order_by(User.id)]


def _new_user(org_id: int, name: str, role: str, *, superuser: bool = False) -> User:
    try:
        with audit.write_transaction():
            return User.create(org=org_id, name=name, role=role, superuser=superuser)
    except pw.IntegrityError:
        raise Conflict(f"name: a user named {name!r} already exists in this org") from None


def _rank(user: User) -> int:
    return auth.rank(user.role, user.superuser)


def _may_touch(caller: auth.Caller, user: User, what: str) -> None:
    """Refuse ``what`` on a user ranked above the caller (a superuser, for an org admin)."""
    if _rank(user) > caller.rank:
        above = "an appliance superuser" if user.superuser else f"a {user.role}"
        raise Forbidden(f"user {user.name!r} is {above}; only someone of that rank may {what}")


def create_user(
    caller: auth.Caller, name: str, role: str, *, superuser: bool = False
) -> CreatedUser:
    """A user and a first token for them (the secret is in the answer, once).

    ``superuser``: another appliance superuser (an admin); only a superuser may make one.
    """
    check_name(name)
    check_role(role)
    if superuser:
        if caller.rank < auth.SUPERUSER_RANK:
            raise Forbidden("superuser: only an appliance superuser may create another")
        if role != "admin":
            raise ApplianceError("role: a superuser has the admin role")
    org = models.Org.get_by_id(caller.org_id)
    with audit.write_transaction():
        user = _new_user(org.id, name, role, superuser=superuser)
        token = auth.create_token(org, f"{name} (first token)", role, user_id=user.id)
        out = user_out(user)
        audit.record(
            "user.create",
            actor=actor_of(caller),
            org_id=org.id,
            target=f"user:{user.id}",
            after=msgspec.to_builtins(out),
        )
    return CreatedUser(**msgspec.structs.asdict(out), token=token)


def _user(org_id: int, user_id: int) -> User:
    user = User.get_or_none(User.id == user_id, User.org == org_id)
    if user is None:
        raise NotFound(f"user {user_id} not found in this org")
    return user


def delete_user(caller: auth.Caller, user_id: int) -> DeletedUser:
    """Delete a user and revoke all their tokens.

    Never yourself, a user ranked above you, the org's last admin or the
    appliance's last superuser.
    """
    with audit.write_transaction():
        user = _user(caller.org_id, user_id)
        _may_touch(caller, user, "delete it")
        if user.id == caller.user_id:
            raise Conflict("you cannot delete your own user; ask another admin")
        if user.superuser:
            others = User.select().where(User.superuser == True, User.id != user.id)  # noqa: E712
            if not others.exists():
                raise Conflict(f"user {user.name!r} is the appliance's last superuser")
        if user.role == "admin":
            admins = User.select().where(User.org == caller.org_id, User.role == "admin").count()
            if admins <= 1:
                raise Conflict(f"user {user.name!r} is the org's last admin")
        before = user_out(user)
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
            before=msgspec.to_builtins(before),
            after={"tokens_revoked": revoked},
        )
    return DeletedUser(**msgspec.structs.asdict(before), deleted=True, tokens_revoked=revoked)


def list_tokens(org_id: int) -> list[Token]:
    users = {u.id: u.name for u in User.select(User.id, User.name).where(User.org == org_id)}
    rows = models.ApiToken.select().where(models.ApiToken.org == org_id)
    return [token_out(t, users) for t in rows.order_by(models.ApiToken.id)]


def create_token(
    caller: auth.Caller, name: str, role: str | None = None, user_id: int | None = None
) -> CreatedToken:
    """A new token for ``user_id`` (default: the caller), role at most the user's."""
    check_name(name)
    target_id = user_id if user_id is not None else caller.user_id
    if target_id is None:
        raise ApplianceError("user_id: required (this token belongs to no user)")
    with audit.write_transaction():
        user = _user(caller.org_id, target_id)
        _may_touch(caller, user, "make tokens for it")
        role = check_role(role) if role is not None else user.role
        if auth.ROLES.index(role) > auth.ROLES.index(user.role):
            raise ApplianceError(
                f"role: {role} is above the role of user {user.name!r} ({user.role})"
            )
        org = models.Org.get_by_id(caller.org_id)
        secret = auth.create_token(org, name, role, user_id=user.id)
        row = models.ApiToken.get(models.ApiToken.token_hash == auth.digest(secret))
        out = token_out(row, {user.id: user.name})
        audit.record(
            "token.create",
            actor=actor_of(caller),
            org_id=org.id,
            target=f"token:{row.id}",
            after=msgspec.to_builtins(out),
        )
    return CreatedToken(**msgspec.structs.asdict(out), token=secret)


def revoke_token(caller: auth.Caller, token_id: int) -> Token:
    with audit.write_transaction():
        row = models.ApiToken.get_or_none(
            models.ApiToken.id == token_id, models.ApiToken.org == caller.org_id
        )
        if row is None:
            raise NotFound(f"token {token_id} not found in this org")
        owner = User.get_or_none(User.id == row.user_id) if row.user_id is not None else None
        if owner is not None:
            _may_touch(caller, owner, "revoke its tokens")
        elif auth.rank(row.role) > caller.rank:
            raise Forbidden(f"token {token_id} has the {row.role} role, above yours")
        before = msgspec.to_builtins(token_out(row))
        if row.revoked_at is None:
            row.revoked_at = models.utcnow()
            row.save()
            audit.record(
                "token.revoke",
                actor=actor_of(caller),
                org_id=caller.org_id,
                target=f"token:{token_id}",
                before=before,
                after=msgspec.to_builtins(token_out(row)),
            )
    return token_out(row)


def me(caller: auth.Caller) -> Me:
    org = models.Org.get_by_id(caller.org_id)
    return Me(
        org=org.name,
        org_id=org.id,
        user=caller.user_name or None,
        user_id=caller.user_id,
        role=caller.role,
        superuser=caller.superuser,
        token_id=caller.token_id,
    )


def first_admin(org: models.Org, name: str) -> User:
    """A new org's first admin (never a superuser: that is not an org-level role)."""
    return _new_user(org.id, name, "admin")


def superuser_of(org: models.Org) -> User | None:
    """The org's first superuser (the one ``mockmock up``'s token file belongs to)."""
    q = User.select().where(User.org == org.id, User.superuser == True)  # noqa: E712
    return q.order_by(User.id).first()


def bootstrap_superuser(org: models.Org, holder: int | None = None) -> User:
    """The appliance's superuser in ``org`` (the demo org), made once.

    When a superuser exists this only returns it: no user is ever promoted for
    its name. Only a database without any superuser (a fresh one, or one from
    before the flag) gets one: ``holder``, the user the data dir's admin token
    belongs to, when given; else a new admin user.
    """
    with audit.write_transaction():
        found = superuser_of(org)
        if found is not None:
            return found
        anyone = User.select().where(User.superuser == True).exists()  # noqa: E712
        if anyone:
            raise ApplianceError(
                f"org {org.name}: the appliance's superusers are in another org; "
                "the admin token file is only made for the demo org's"
            )
        user = User.get_or_none(User.id == holder, User.org == org.id) if holder else None
        if user is None:
            taken = {u.name for u in User.select(User.name).where(User.org == org.id)}
            name, n = "admin", 1
            while name in taken:  # a name is only a label: a free one, never a match
                n += 1
                name = f"admin-{n}"
            user = User.create(org=org.id, name=name, role="admin", superuser=True)
        else:
            user.role, user.superuser = "admin", True
            user.save()
        audit.record(
            "user.superuser",
            actor="system",
            org_id=org.id,
            target=f"user:{user.id}",
            after={
                **msgspec.to_builtins(user_out(user)),
                "why": "bootstrap: the appliance had no superuser",
            },
        )
    return user
