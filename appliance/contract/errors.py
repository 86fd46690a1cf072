"""The one error body every route answers with on 4xx and 5xx."""

from __future__ import annotations

from typing import Any

import msgspec


class ErrorBody(msgspec.Struct, kw_only=True):
    """``{"status_code", "detail", "extra"?}``; the 500 answer carries ``detail`` only."""

    status_code: int | msgspec.UnsetType = msgspec.UNSET
    detail: str
    """One line naming the field and the problem."""
    extra: list[Any] | msgspec.UnsetType = msgspec.UNSET
    """Validation details, when there are several."""
