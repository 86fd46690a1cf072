"""The org's billing email and the notices the appliance owes (``/api/v1/billing/email``,
``/api/v1/notices``)."""

from __future__ import annotations

import msgspec


class BillingEmail(msgspec.Struct, forbid_unknown_fields=True):
    email: str
    """Where billing mail and Stripe's receipts go; empty removes it."""


class BillingEmailOut(msgspec.Struct, kw_only=True):
    org: str
    email: str | None
    """None: the org has no billing email."""


class NoticeOut(msgspec.Struct, kw_only=True):
    id: int
    kind: str
    """pay_link | payment_failed | draft_ready"""
    org_id: int
    invoice_id: int | None
    subject: str
    audience: str
    """org (its billing email) | admins (MOCKMOCK_BILLING_ADMINS)"""
    status: str
    """sent | queued | no_recipient | no_smtp | failed (gave up after MAX_TRIES) |
    obsolete (a draft approved before its mail went out)"""
    created_at: str
    """ISO 8601 with offset, as is ``sent_at``."""
    sent_at: str | None
    sent_to: str
    """The addresses it went to, comma-separated; empty until sent."""
    tries: int
    last_error: str
