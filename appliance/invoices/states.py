"""The lifecycles of an invoice and of a charge attempt: statuses and the moves allowed.

Pure: a table each, checked by :func:`check_invoice` / :func:`check_attempt`. The
one function that changes an invoice's status (``service.move``) and the one that
changes an attempt's state (``payments.move_attempt``) call them, so a move the
table does not list raises instead of being written.
"""

from __future__ import annotations

from enum import StrEnum

from appliance.errors import Conflict


class InvoiceStatus(StrEnum):
    DRAFT = "draft"
    """Made by a close; an admin reviews it."""
    APPROVED = "approved"
    CHARGING = "charging"
    """An attempt is out (or Stripe said ``processing``)."""
    REQUIRES_ACTION = "requires_action"
    """The bank wants the customer to authenticate (a /billing/pay link)."""
    PAID = "paid"
    FAILED = "failed"
    """Declined; dunning retries at ``next_retry_at``."""
    VOID = "void"
    CARRIED = "carried"
    """Below the minimum charge: its total moves to the next month, never charged."""
    SETTLED = "settled"
    """Nothing left to pay (an adjustment, or credit covered it)."""
    REFUNDED = "refunded"


class AttemptState(StrEnum):
    PENDING = "pending"
    """Committed before Stripe was called: the call may or may not have reached it."""
    PROCESSING = "processing"
    REQUIRES_ACTION = "requires_action"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


_I = InvoiceStatus
_A = AttemptState

INITIAL: frozenset[InvoiceStatus] = frozenset({_I.DRAFT, _I.CARRIED, _I.SETTLED})
"""What a close may create an invoice as."""

INVOICE_MOVES: dict[InvoiceStatus, frozenset[InvoiceStatus]] = {
    # An adjustment may re-rate an open invoice below the minimum or to nothing.
    _I.DRAFT: frozenset({_I.APPROVED, _I.VOID, _I.CARRIED, _I.SETTLED}),
    _I.APPROVED: frozenset({_I.CHARGING, _I.VOID, _I.CARRIED, _I.SETTLED}),
    _I.CHARGING: frozenset({_I.PAID, _I.FAILED, _I.REQUIRES_ACTION}),
    _I.REQUIRES_ACTION: frozenset({_I.PAID, _I.FAILED, _I.CHARGING, _I.VOID}),
    # A declined attempt may still succeed later (its PaymentIntent confirmed after all).
    _I.FAILED: frozenset({_I.CHARGING, _I.PAID, _I.VOID}),
    _I.PAID: frozenset({_I.REFUNDED}),
    # Voided while the customer was asked to authenticate, who then did: the money
    # arrived, and the invoice says so (and can be refunded).
    _I.VOID: frozenset({_I.PAID}),
    _I.CARRIED: frozenset({_I.VOID}),
    _I.SETTLED: frozenset(),
    _I.REFUNDED: frozenset(),
}

ATTEMPT_MOVES: dict[AttemptState, frozenset[AttemptState]] = {
    _A.PENDING: frozenset({_A.PROCESSING, _A.REQUIRES_ACTION, _A.SUCCEEDED, _A.FAILED}),
    _A.PROCESSING: frozenset({_A.REQUIRES_ACTION, _A.SUCCEEDED, _A.FAILED}),
    _A.REQUIRES_ACTION: frozenset({_A.PROCESSING, _A.SUCCEEDED, _A.FAILED}),
    _A.FAILED: frozenset({_A.SUCCEEDED}),
    _A.SUCCEEDED: frozenset(),
}

OPEN: frozenset[InvoiceStatus] = frozenset({_I.DRAFT, _I.APPROVED})
"""Statuses an admin may still change the figures of."""
CHARGEABLE: frozenset[InvoiceStatus] = frozenset({_I.APPROVED, _I.FAILED})
"""Statuses a new attempt may start from."""


class IllegalMove(Conflict):
    """A status change the lifecycle does not allow (a 409 at the API edge)."""


def may_move_invoice(before: str, after: InvoiceStatus) -> bool:
    return after in INVOICE_MOVES.get(InvoiceStatus(before), frozenset())


def may_move_attempt(before: str, after: AttemptState) -> bool:
    return after in ATTEMPT_MOVES.get(AttemptState(before), frozenset())


def check_invoice(before: str, after: InvoiceStatus, what: str = "invoice") -> None:
    if not may_move_invoice(before, after):
        raise IllegalMove(f"{what} is {before}; it cannot become {after}")


def check_attempt(before: str, after: AttemptState, what: str = "attempt") -> None:
    if not may_move_attempt(before, after):
        raise IllegalMove(f"{what} is {before}; it cannot become {after}")


def check_initial(status: InvoiceStatus) -> InvoiceStatus:
    if status not in INITIAL:
        raise IllegalMove(f"an invoice cannot be created {status}")
    return status
