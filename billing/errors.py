"""The billing error family: what callers catch, and what the CLI turns into one line."""

from __future__ import annotations


class BillingError(Exception):
    """Base of every error billing/ raises on purpose."""


class BillingInputError(BillingError):
    """A scenario (or rating input) that cannot be rated, and where.

    ``path`` names the offending field the way a user writes it
    (``on_demand[2].end``, ``catalog.flat.flat10-30d.price``); it is empty when
    the problem is the document as a whole (not JSON, not an object).
    """

    def __init__(self, path: str, message: str) -> None:
        super().__init__(path, message)
        self.path = path
        self.message = message

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def shown(value: object, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters: a message quotes input, not a megabyte."""
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"
