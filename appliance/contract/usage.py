"""Metered usage as the org sees it."""

from __future__ import annotations

import msgspec


class Usage(msgspec.Struct, kw_only=True):
    device_seconds: float
    """The org's total, all time."""
    groups: dict[str, float]
    """Device-seconds per group name."""
