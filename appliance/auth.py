"""API tokens and roles. Secrets are random and only their SHA-256 is stored.

A salted slow hash buys nothing for 256-bit random tokens (nobody brute-forces
them); a plain digest keeps lookup a single indexed query.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from litestar.di import NamedDependency

from appliance import models
from appliance.errors import Forbidden, Unauthorized

ROLES = ("viewer", "operator", "admin")
SUPERUSER_RANK = len(ROLES)
"""Above every org role: the appliance's superuser (a flag on the user, set at bootstrap)."""


def rank(role: str, superuser: bool = False) -> int:
    """Who may touch whom: viewer < operator < admin < superuser."""
    return SUPERUSER_RANK if superuser else ROLES.index(role)


def new_secret(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def matches(secret: str, hashed: str) -> bool:
    return hmac.compare_digest(digest(secret), hashed)


@dataclass(frozen=True)
class Caller:
    org_id: int
    role: str
    token_id: int
    user_id: int | None = None
    user_name: str = ""
    superuser: bool = False  # may list and create orgs (the appliance's own admin)

    def require(self, role: str) -> None:
        if ROLES.index(self.role) < ROLES.index(role):
            raise Forbidden(f"this needs the {role} role; your token has {self.role}")

    def require_superuser(self) -> None:
        if not self.superuser:
            raise Forbidden("this needs an appliance superuser (the admin of `mockmock up`)")

    @property
    def rank(self) -> int:
        # A superuser's lower-role token keeps that role's reach.
        return rank(self.role, self.superuser and self.role == "admin")


LAST_USED_EVERY = dt.timedelta(seconds=60)
"""last_used_at is written at most this often per token: no write per request."""


def authenticate(header: str | None) -> Caller:
    if not header or not header.lower().startswith("bearer "):
        raise Unauthorized("missing bearer token (Authorization: Bearer <token>)")
    token = header[7:].strip()
    row = (
        models.ApiToken.select()
        .where(models.ApiToken.token_hash == digest(token), models.ApiToken.revoked_at.is_null())
        .first()
    )
    if row is None:
        raise Unauthorized("unknown or revoked token")
    role, user_name, superuser = row.role, "", False
    if row.user_id is not None:
        from appliance.accounts.models import User

        user = User.get_or_none(User.id == row.user_id)
        if user is None:
            raise Unauthorized("this token's user was deleted")
        # A user demoted after the token was made gets the lower of the two.
        role = min(role, user.role, key=ROLES.index)
        user_name, superuser = user.name, user.superuser
    now = models.utcnow()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_EVERY:
        models.ApiToken.update(last_used_at=now).where(models.ApiToken.id == row.id).execute()
    return Caller(
        org_id=row.org_id,
        role=role,
        token_id=row.id,
        user_id=row.user_id,
        user_name=user_name,
        superuser=superuser,
    )


def create_token(org: models.Org, name: str, role: str, user_id: int | None = None) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    token = new_secret("mm")
    models.ApiToken.create(org=org, name=name, role=role, token_hash=digest(token), user_id=user_id)
    return token


def write_secret_file(path: Path, secret: str) -> None:
    """Write a secret readable by its owner only (0600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


# How route handlers ask for the caller: an explicit named dependency (Litestar 3
# stops inferring dependencies from bare annotations).
CallerParam = NamedDependency[Caller]
