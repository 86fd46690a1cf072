"""Billing contacts and the notice outbox (one row per message the appliance owes)."""

from __future__ import annotations

import peewee as pw

from appliance import models
from appliance.db import BaseModel


class BillingContact(BaseModel):
    """The address an org's billing mail (and Stripe's receipts) go to."""

    org = pw.ForeignKeyField(models.Org, unique=True, on_delete="CASCADE")
    email = pw.CharField(max_length=254)
    updated_at = pw.DateTimeField(default=models.utcnow)

    class Meta:
        table_name = "billing_contact"


class Notice(BaseModel):
    """A message owed to someone: queued in the transaction that caused it, sent once.

    ``key`` (kind, invoice, attempt) is unique, so the same event never queues two
    messages; ``claimed_at`` lets one sender (of several replicas) take a notice.
    """

    org = pw.ForeignKeyField(models.Org, on_delete="CASCADE")
    key = pw.CharField(unique=True)
    kind = pw.CharField()  # pay_link | payment_failed | draft_ready
    audience = pw.CharField()  # org (its billing contact) | admins (MOCKMOCK_BILLING_ADMINS)
    invoice_id = pw.IntegerField(null=True)
    subject = pw.CharField(max_length=500)
    body = pw.TextField()
    created_at = pw.DateTimeField(default=models.utcnow)
    claimed_at = pw.DateTimeField(null=True)
    sent_at = pw.DateTimeField(null=True, index=True)
    sent_to = pw.CharField(default="", max_length=2000)
    tries = pw.IntegerField(default=0)
    last_error = pw.CharField(default="", max_length=500)

    class Meta:
        table_name = "notice"


TABLES: list[type[BaseModel]] = [BillingContact, Notice]
