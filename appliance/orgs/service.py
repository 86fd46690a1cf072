"""Orgs (tenants) and the demo org ``mockmock up`` seeds.

An org bills in one currency (JPY or USD, never converted) and closes its
months in one IANA time zone. The first start makes the demo org's admin the
appliance's superuser (the one who may list and create other orgs); later
starts only hand that same user a fresh token when the token file no longer
works, and never promote anyone.
"""

from __future__ import annotations

import re
import zoneinfo
from pathlib import Path

import msgspec
import peewee as pw

from appliance import auth, models
from appliance.accounts import service as accounts
from appliance.audit import service as audit
from appliance.audit.http import actor_of
from appliance.contract.orgs import CreatedOrg, OrgAdmin
from appliance.contract.orgs import Org as OrgOut
from appliance.errors import ApplianceError, Conflict
from appliance.schedule import clock

DEMO_ORG = "demo"
CURRENCIES = ("JPY", "USD")
DEFAULT_ENTITLEMENT = "free"
"""New orgs start on the free tier; ``PUT /api/v1/entitlements/on-demand`` changes it."""

_ORG_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def check_currency(currency: str) -> str:
    if currency not in CURRENCIES:
        raise ApplianceError(f"currency: must be one of {', '.join(CURRENCIES)}")
    return currency


def check_timezone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ApplianceError(
            f"timezone: {name!r} is not an IANA time zone (e.g. Asia/Tokyo, UTC)"
        ) from None
    return name


def org_out(org: models.Org) -> OrgOut:
    return OrgOut(
        id=org.id,
        name=org.name,
        currency=org.currency,
        timezone=org.timezone,
        registered_at=clock.aware(org.registered_at)
        .astimezone(zoneinfo.ZoneInfo(org.timezone))
        .isoformat(),
        default_entitlement=org.default_entitlement,
        stripe_mode=org.stripe_mode,
    )


def list_orgs(caller: auth.Caller) -> list[OrgOut]:
    """Every org for a superuser; the caller's own otherwise."""
    q = models.Org.select().order_by(models.Org.id)
    if not caller.superuser:
        q = q.where(models.Org.id == caller.org_id)
    return [org_out(o) for o in q]


def create_org(
    caller: auth.Caller, name: str, currency: str, timezone: str, admin: str = "admin"
) -> CreatedOrg:
    """A new org with an admin user; the answer carries the admin's token, once."""
    if not isinstance(name, str) or not _ORG_NAME.fullmatch(name):
        raise ApplianceError("name: 1-63 lowercase letters, digits and '-', not starting with '-'")
    check_currency(currency)
    check_timezone(timezone)
    accounts.check_name(admin, "admin")
    with audit.write_transaction():
        try:
            with audit.write_transaction():
                org = models.Org.create(
                    name=name,
                    currency=currency,
                    timezone=timezone,
                    registered_at=clock.utcnow(),
                    default_entitlement=DEFAULT_ENTITLEMENT,
                )
        except pw.IntegrityError:
            raise Conflict(f"name: an org named {name!r} already exists") from None
        user = accounts.first_admin(org, admin)
        token = auth.create_token(org, f"{admin} (first token)", "admin", user_id=user.id)
        out = org_out(org)
        audit.record(
            "org.create",
            actor=actor_of(caller),
            org_id=org.id,
            target=f"org:{org.id}",
            after=msgspec.to_builtins(out),
        )
    return CreatedOrg(
        **msgspec.structs.asdict(out), admin=OrgAdmin(user_id=user.id, name=admin, token=token)
    )


def _token_row(token_path: Path) -> models.ApiToken | None:
    """The live token row the admin token file holds, if any."""
    try:
        token = token_path.read_text().strip()
    except FileNotFoundError:
        return None
    if not token:
        return None
    return models.ApiToken.get_or_none(
        models.ApiToken.token_hash == auth.digest(token),
        models.ApiToken.revoked_at.is_null(),
    )


def ensure_demo_org(token_path: Path) -> tuple[models.Org, bool]:
    """The demo org, the appliance's superuser and a token for them at ``token_path`` (0600).

    Idempotent: an existing token file is kept as long as it still authenticates as
    the superuser, so restarting ``mockmock up`` does not break scripts holding it.
    """
    with audit.write_transaction():
        org, created = models.Org.get_or_create(
            name=DEMO_ORG,
            defaults={
                "currency": "JPY",
                "timezone": "Asia/Tokyo",
                "default_entitlement": "on_demand:cn10000",
                "stripe_mode": "test",
                "registered_at": clock.utcnow(),
            },
        )
        if created:
            audit.record(
                "org.create",
                actor="system",
                org_id=org.id,
                target=f"org:{org.id}",
                after=msgspec.to_builtins(org_out(org)),
            )
        row = _token_row(token_path)
        if row is not None and row.org_id != org.id:
            row = None
        holder = row.user_id if row is not None else None
        admin = accounts.bootstrap_superuser(org, holder)
        if row is not None and row.user_id is None:  # a token from before users existed
            row.user_id = admin.id
            row.save()
            return org, False
        if row is not None and row.user_id == admin.id:
            return org, False
        token = auth.create_token(org, "admin (mockmock up)", "admin", user_id=admin.id)
    auth.write_secret_file(token_path, token)
    return org, True
