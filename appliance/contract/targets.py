"""The target policy (``/api/v1/targets``): lab networks, proofs of control, a dry run."""

from __future__ import annotations

from typing import Annotated

import msgspec

TARGETS_PATH = "/api/v1/targets"
MAX_ID = 2**31 - 1
"""Row ids (appliance/api.py): out-of-range numbers are a 400, never a database error."""


class NewNetwork(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The body of ``POST /api/v1/targets/networks`` (superusers only)."""

    cidr: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    """An IPv4 or IPv6 network, e.g. 10.20.0.0/16 (a bare address is a /32 or /128)."""
    org_id: Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)] | None = None
    """Only this org may send there; default: every org."""
    note: Annotated[str, msgspec.Meta(max_length=255)] = ""


class VerificationRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The body of ``POST /api/v1/targets/verifications``."""

    url: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    """scheme://host[:port] that will serve the token at /.well-known/mockmock/<token_id>."""


class Network(msgspec.Struct, kw_only=True):
    """A lab network mock traffic may reach without a proof."""

    id: int | None
    """None for a network of the MOCKMOCK_LAB_NETWORKS setting."""
    cidr: str
    org_id: int | None
    """Only this org may send there; None: every org."""
    note: str
    source: str
    """setting | api"""
    created_at: str | msgspec.UnsetType = msgspec.UNSET
    """ISO 8601, UTC (``Z``); absent for a network of the setting."""
    created_by: str | msgspec.UnsetType = msgspec.UNSET


class Verification(msgspec.Struct, kw_only=True):
    """An org's claim on a host, proven once the host serves the token."""

    id: int
    host: str
    url: str
    """scheme://host[:port] the token is fetched from."""
    token_id: str
    well_known_url: str
    verified: bool
    verified_at: str | None
    checked_at: str | None
    last_error: str | None
    created_at: str
    created_by: str


class NewVerification(Verification, kw_only=True):
    """A new claim: its token is in this answer only."""

    token: str
    instructions: str


class UrlCheck(msgspec.Struct, kw_only=True):
    url: str
    host: str
    addresses: list[str]
    """What the host resolves to now."""
    allowed: bool
    reason: str | None
    """Why not, when not allowed."""
