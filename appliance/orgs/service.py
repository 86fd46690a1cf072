"""Orgs and the demo org ``mockmock up`` seeds."""

from __future__ import annotations

from pathlib import Path

from appliance import auth, models

DEMO_ORG = "demo"


def ensure_demo_org(token_path: Path) -> tuple[models.Org, bool]:
    """The demo org and an admin token written to ``token_path`` (0600).

    Idempotent: an existing token file is kept as long as it still authenticates,
    so restarting ``mockmock up`` does not break scripts holding the token.
    """
    org, _ = models.Org.get_or_create(
        name=DEMO_ORG,
        defaults={
            "currency": "JPY",
            "timezone": "Asia/Tokyo",
            "default_entitlement": "on_demand:cn10000",
            "stripe_mode": "test",
        },
    )
    if token_path.exists():
        token = token_path.read_text().strip()
        row = models.ApiToken.get_or_none(
            models.ApiToken.token_hash == auth.digest(token),
            models.ApiToken.revoked_at.is_null(),
        )
        if row is not None:
            return org, False
    token = auth.create_token(org, "admin (mockmock up)", "admin")
    auth.write_secret_file(token_path, token)
    return org, True
