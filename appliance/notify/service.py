"""Billing contacts, the notices billing events queue, and their delivery over SMTP.

Stripe sends the receipt of a successful charge (``receipt_email``); the appliance
owes the rest: the link where a customer confirms a payment their bank wants to
authenticate (SCA), a failed payment with its next retry, and "a draft awaits
your approval" to the admins who approve invoices.

A notice is queued in the same transaction as the event (one-line hooks in the
invoice code), keyed so an event never queues two, and sent later by
:func:`deliver` (a scheduler job), so a slow or absent mail server never holds
a charge's transaction. Without SMTP configured nothing is sent and every notice
stays listed (``GET /api/v1/notices``) next to its ``notice.queued`` audit entry.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

import peewee as pw

from appliance import bulk, models
from appliance.audit import service as audit
from appliance.contract.notify import BillingEmailOut, NoticeOut
from appliance.errors import ApplianceError
from appliance.notify import messages
from appliance.notify.models import BillingContact, Notice
from appliance.notify.smtp import SmtpConfig, SmtpError, message, send
from appliance.schedule import clock

log = logging.getLogger(__name__)

MAX_TRIES = 8
CLAIM_FOR = dt.timedelta(minutes=5)
"""A sender that died holding a notice gives it up after this long."""
BATCH = 50
OBSOLETE = "not sent:"
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251})$")


def check_email(email: str, field: str = "email") -> str:
    """A plain address (no display name, no list, nothing a mail header would split on)."""
    email = email.strip()
    host = email.rpartition("@")[2]
    if len(email) > 254 or not _EMAIL.match(email) or "." not in host or ".." in email:
        raise ApplianceError(
            f"{field}: {email[:80]!r} is not an email address like name@example.com"
        )
    return email


def parse_admins(text: str) -> list[str]:
    """``MOCKMOCK_BILLING_ADMINS``: comma-separated addresses."""
    return [check_email(a, "billing_admins") for a in text.split(",") if a.strip()]


# ---- contacts ------------------------------------------------------------------------


def billing_email(org_id: int) -> str:
    """The org's billing address, '' when it has none."""
    row = BillingContact.get_or_none(BillingContact.org == org_id)
    return row.email if row is not None else ""


def get_contact(org_id: int) -> BillingEmailOut:
    org = models.Org.get_by_id(org_id)
    return BillingEmailOut(org=org.name, email=billing_email(org_id) or None)


def set_contact(org_id: int, email: str, *, actor: str) -> BillingEmailOut:
    email = check_email(email) if email.strip() else ""
    with audit.write_transaction():
        before = billing_email(org_id) or None
        if email:
            n = (
                BillingContact.update(email=email, updated_at=clock.utcnow())
                .where(BillingContact.org == org_id)
                .execute()
            )
            if not n:
                BillingContact.create(org=org_id, email=email, updated_at=clock.utcnow())
        else:
            BillingContact.delete().where(BillingContact.org == org_id).execute()
        audit.record(
            "billing.email",
            actor=actor,
            org_id=org_id,
            target=f"org:{org_id}",
            before={"email": before},
            after={"email": email or None},
        )
    return get_contact(org_id)


# ---- queueing (called inside the invoice code's transactions) --------------------------


def _queue(org_id: int, key: str, kind: str, audience: str, invoice: Any, text: tuple[str, str]):
    subject, body = text
    try:
        with audit.write_transaction():  # a savepoint: a duplicate key leaves the rest intact
            Notice.create(
                org=org_id,
                key=key,
                kind=kind,
                audience=audience,
                invoice_id=invoice.id,
                subject=subject[:500],
                body=body,
            )
    except pw.IntegrityError:
        return  # this event's notice was queued before
    audit.record(
        "notice.queued",
        actor=audit.SCHEDULER,
        org_id=org_id,
        target=f"invoice:{invoice.id}",
        after={"kind": kind, "to": audience, "subject": subject},
    )


def charge_recorded(inv: Any, attempt: Any) -> None:
    """After a charge attempt's outcome: a pay link (SCA) or a failed-payment notice."""
    if inv.status == "requires_action" and inv.action_url and attempt.state == "requires_action":
        from appliance.invoices.models import LINK_DAYS

        text = messages.pay_link(inv.number, inv.total, inv.currency, inv.action_url, LINK_DAYS)
        _queue(inv.org_id, f"pay_link:{inv.id}:{attempt.attempt}", "pay_link", "org", inv, text)
    elif inv.status == "failed" and attempt.state == "failed":
        org = models.Org.get_by_id(inv.org_id)
        retry = clock.aware(inv.next_retry_at) if inv.next_retry_at else None
        reason = inv.last_error or "card_declined"
        text = messages.payment_failed(
            inv.number, inv.total, inv.currency, reason, retry, org.timezone
        )
        key = f"payment_failed:{inv.id}:{attempt.attempt}"
        _queue(inv.org_id, key, "payment_failed", "org", inv, text)


def invoice_drafted(inv: Any, base_url: str) -> None:
    """A new draft: the admins who approve invoices are told it waits for them."""
    if inv is None or inv.status != "draft":
        return
    org = models.Org.get_by_id(inv.org_id)
    text = messages.draft_ready(
        org.name, inv.number, inv.total, inv.currency, inv.period, inv.id, base_url
    )
    _queue(inv.org_id, f"draft_ready:{inv.id}", "draft_ready", "admins", inv, text)


def invoices_drafted(drafts: list[tuple[Any, int, dict[str, Any]]], base_url: str) -> None:
    """:func:`invoice_drafted` for a month close's batch of new drafts ((org, invoice id,
    invoice row)): one insert and one audit write for the batch, not one per org."""
    if not drafts:
        return
    rows, entries = [], []
    for org, inv_id, row in drafts:
        subject, body = messages.draft_ready(
            org.name, row["number"], row["total"], row["currency"], row["period"], inv_id, base_url
        )
        rows.append(
            dict(
                org=org.id,
                key=f"draft_ready:{inv_id}",
                kind="draft_ready",
                audience="admins",
                invoice_id=inv_id,
                subject=subject[:500],
                body=body,
            )
        )
        entries.append(
            audit.Entry(
                "notice.queued",
                actor=audit.SCHEDULER,
                org_id=org.id,
                target=f"invoice:{inv_id}",
                after={"kind": "draft_ready", "to": "admins", "subject": subject},
            )
        )
    # New invoices: their keys cannot have been queued before.
    bulk.insert_rows(Notice, rows)
    audit.record_many(entries)


# ---- delivery -------------------------------------------------------------------------


def _claim(notice_id: int, now: dt.datetime) -> bool:
    stale = now - CLAIM_FOR
    won = (
        Notice.update(claimed_at=now)
        .where(
            Notice.id == notice_id,
            Notice.sent_at.is_null(),
            (Notice.claimed_at.is_null()) | (Notice.claimed_at < stale),
        )
        .execute()
    )
    return bool(won)


def _still_draft(notice: Notice) -> bool:
    """A draft approved (or voided) before its mail went out needs no mail any more."""
    from appliance.invoices.models import Invoice

    inv = Invoice.get_or_none(Invoice.id == notice.invoice_id)
    if inv is not None and inv.status == "draft":
        return True
    status = inv.status if inv is not None else "deleted"
    Notice.update(tries=MAX_TRIES, last_error=f"{OBSOLETE} the invoice was {status} first").where(
        Notice.id == notice.id
    ).execute()
    return False


def _recipients(notice: Notice, admins: list[str]) -> list[str]:
    if notice.audience == "admins":
        return admins
    email = billing_email(notice.org_id)
    return [email] if email else []


def deliver(config: SmtpConfig | None, admins: list[str]) -> int:
    """Send what is queued (at most :data:`BATCH`); returns how many were sent."""
    if config is None:
        return 0
    now = clock.utcnow()
    pending = list(
        Notice.select()
        .where(Notice.sent_at.is_null(), Notice.tries < MAX_TRIES)
        .order_by(Notice.id)
        .limit(BATCH)
    )
    sent = 0
    for notice in pending:
        if notice.kind == "draft_ready" and not _still_draft(notice):
            continue
        to = _recipients(notice, admins)
        if not to:
            continue  # no address yet; sent once one is set
        if not _claim(notice.id, now):
            continue
        try:
            send(config, message(config, to, notice.subject, notice.body))
        except SmtpError as e:
            log.warning("notice %d (%s) not sent: %s", notice.id, notice.kind, e)
            Notice.update(tries=Notice.tries + 1, last_error=str(e)[:500], claimed_at=None).where(
                Notice.id == notice.id
            ).execute()
            continue
        with audit.write_transaction():
            Notice.update(
                sent_at=clock.utcnow(), sent_to=", ".join(to)[:2000], last_error=""
            ).where(Notice.id == notice.id).execute()
            audit.record(
                "notice.sent",
                actor=audit.SCHEDULER,
                org_id=notice.org_id,
                target=f"invoice:{notice.invoice_id}",
                after={"kind": notice.kind, "to": to},
            )
        sent += 1
    return sent


def deliver_from_settings(settings: Any) -> int:
    """The scheduler's call: SMTP and admins from the settings (nothing without SMTP)."""
    if not settings.smtp_url:
        return 0
    config = SmtpConfig.parse(
        settings.smtp_url, sender=settings.smtp_from, ca_file=settings.smtp_ca
    )
    return deliver(config, parse_admins(settings.billing_admins))


# ---- listing ---------------------------------------------------------------------------


def _status(n: Notice, smtp: bool, admins: list[str]) -> str:
    if n.sent_at is not None:
        return "sent"
    if n.last_error.startswith(OBSOLETE):
        return "obsolete"
    if n.tries >= MAX_TRIES:
        return "failed"
    if not smtp:
        return "no_smtp"
    if not _recipients(n, admins):
        return "no_recipient"
    return "queued"


def list_notices(
    org_id: int | None, *, smtp: bool, admins: list[str], limit: int = 100
) -> list[NoticeOut]:
    q = Notice.select().order_by(Notice.id.desc()).limit(max(1, min(limit, 500)))
    if org_id is not None:
        q = q.where(Notice.org == org_id)
    return [
        NoticeOut(
            id=n.id,
            kind=n.kind,
            org_id=n.org_id,
            invoice_id=n.invoice_id,
            subject=n.subject,
            audience=n.audience,
            status=_status(n, smtp, admins),
            created_at=clock.aware(n.created_at).isoformat(),
            sent_at=clock.aware(n.sent_at).isoformat() if n.sent_at else None,
            sent_to=n.sent_to,
            tries=n.tries,
            last_error=n.last_error,
        )
        for n in q
    ]
