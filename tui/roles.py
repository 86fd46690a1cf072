"""Roles as the appliance ranks them, so screens hide what the caller may not do."""

from __future__ import annotations

RANK = {"viewer": 0, "operator": 1, "admin": 2}


def may(role: str | None, needed: str) -> bool:
    """Whether ``role`` reaches ``needed``; an unknown role may only look."""
    return RANK.get(role or "viewer", 0) >= RANK[needed]
