"""Invoices: the month close, early closes, approval, void, adjust; coupons and credits.

The month close builds a :class:`billing.scenario.Scenario` per org from the
recorded entitlement intervals (``entitlements.service.billing_inputs``), the
org's redeemed coupons, credit balance and carried balance, and rates it with
:func:`billing.rating.rate`. Exactly once: ``PeriodClose`` is unique per (org,
period) and is written in the same transaction as the invoice and the account
changes, so a rerun, a catch-up after downtime or a crash mid-way never makes a
second invoice. Orgs with nothing due get a ``PeriodClose`` and no invoice.

Early closes (charge-now, and draft-now in test mode) bill the current month so
far as parts 1, 2, ...; the next close starts where they ended, and what each
close rates of the month's On-Demand usage is chosen by :mod:`billing.carry`, so
the month is rounded up to minutes once, at its final close.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import peewee as pw

from appliance import bulk, models
from appliance.audit import service as audit
from appliance.contract import billing as contract
from appliance.db import database
from appliance.entitlements import catalog
from appliance.entitlements import service as entitlements
from appliance.errors import ApplianceError, Conflict, Forbidden, NotFound
from appliance.invoices import faults, states
from appliance.invoices.context import Billing
from appliance.invoices.models import (
    BillingAccount,
    ChargeAttempt,
    Coupon,
    Invoice,
    PeriodClose,
    Redemption,
    StripeCustomer,
)
from appliance.invoices.states import AttemptState, InvoiceStatus
from appliance.notify import service as notify
from appliance.schedule import clock
from billing import carry, rate
from billing.errors import BillingInputError
from billing.invoice import Invoice as Rated
from billing.invoice import decode_invoice, encode_invoice
from billing.money import CURRENCIES
from billing.scenario import Catalog, Scenario, UsageInterval
from billing.scenario import Coupon as CouponSpec

log = logging.getLogger(__name__)

CLOSE_AT = dt.timedelta(minutes=5)
"""The month close runs at 00:05 on day 1 in the org's billing time zone."""

OPEN = states.OPEN
"""Statuses an admin may still change the figures of."""

MAX_AMOUNT = 10**12
"""Largest amount an admin may type (credit, adjustment, coupon, refund), in minor units:
a trillion yen, ten billion dollars; far below what a 64-bit column or sum can hold."""


def check_amount(amount: object, field: str = "amount") -> int:
    if not isinstance(amount, int) or isinstance(amount, bool) or not 0 < amount <= MAX_AMOUNT:
        raise ApplianceError(
            f"{field}: a positive integer in the currency's minor unit, at most {MAX_AMOUNT}"
        )
    return amount


# --- time helpers -------------------------------------------------------------------


def _naive(instant: dt.datetime) -> dt.datetime:
    return clock.aware(instant).astimezone(dt.UTC).replace(tzinfo=None)


def _local(instant: dt.datetime | None, tz: str) -> str | None:
    return None if instant is None else clock.aware(instant).astimezone(ZoneInfo(tz)).isoformat()


def month_start(year: int, month: int, zone: ZoneInfo) -> dt.datetime:
    return datetime_in(year, month, zone)


def datetime_in(year: int, month: int, zone: ZoneInfo) -> dt.datetime:
    while month > 12:
        year, month = year + 1, month - 12
    return dt.datetime(year, month, 1, tzinfo=zone)


def label(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def parse_label(text: str) -> tuple[int, int]:
    found = re.fullmatch(r"([0-9]{4})-([0-9]{2})", text or "")
    if not found or not 1 <= int(found.group(2)) <= 12:
        raise ApplianceError(f"period: must be a month written YYYY-MM, got {text!r}")
    return int(found.group(1)), int(found.group(2))


def period_bounds(period: str, tz: str) -> tuple[dt.datetime, dt.datetime]:
    year, month = parse_label(period)
    zone = ZoneInfo(tz)
    return datetime_in(year, month, zone), datetime_in(year, month + 1, zone)


def due_periods(org: models.Org, now: dt.datetime) -> list[str]:
    """Months of ``org`` whose close time (00:05 on the next month's 1st) has passed."""
    zone = ZoneInfo(org.timezone)
    local_now = clock.aware(now).astimezone(zone)
    first = clock.aware(org.registered_at).astimezone(zone)
    year, month = first.year, first.month
    out = []
    while True:
        end = datetime_in(year, month + 1, zone)
        if end + CLOSE_AT > local_now:
            return out
        out.append(label(year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def next_close_at(tz: str, now: dt.datetime) -> dt.datetime:
    """The next 00:05 on a 1st in ``tz`` after ``now`` (aware UTC)."""
    zone = ZoneInfo(tz)
    local = clock.aware(now).astimezone(zone)
    at = datetime_in(local.year, local.month, zone) + CLOSE_AT
    if at <= local:
        at = datetime_in(local.year, local.month + 1, zone) + CLOSE_AT
    return at.astimezone(dt.UTC)


# --- the rating input ---------------------------------------------------------------


def account(org_id: int) -> BillingAccount:
    acc = BillingAccount.get_or_none(BillingAccount.org == org_id)
    if acc is None:
        try:
            with audit.write_transaction():
                acc = BillingAccount.create(org=org_id)
        except pw.IntegrityError:
            acc = BillingAccount.get(BillingAccount.org == org_id)
    return acc


def _coupons(org_id: int) -> tuple[list[CouponSpec], dict[str, int]]:
    rows = (
        Redemption.select(Redemption, Coupon)
        .join(Coupon)
        .where(Redemption.org == org_id)
        .order_by(Redemption.redeemed_at, Redemption.id)
    )
    specs, used = [], {}
    for r in rows:
        c = r.coupon
        specs.append(
            CouponSpec(
                code=c.code,
                applies_to=c.applies_to,
                duration=c.duration,
                redeemed_at=clock.aware(r.redeemed_at),
                percent_off=Decimal(c.percent_off) if c.percent_off is not None else None,
                amount_off=c.amount_off,
                currency=c.currency,
                months=c.months,
            )
        )
        used[c.code] = r.uses
    return specs, used


def _coupons_many(org_ids: list[int]) -> dict[int, tuple[list[CouponSpec], dict[str, int]]]:
    """:func:`_coupons` of several orgs in one query."""
    out: dict[int, tuple[list[CouponSpec], dict[str, int]]] = {i: ([], {}) for i in org_ids}
    rows = (
        Redemption.select(Redemption, Coupon)
        .join(Coupon)
        .where(Redemption.org.in_(org_ids))
        .order_by(Redemption.redeemed_at, Redemption.id)
    )
    for r in rows:
        c = r.coupon
        specs, used = out[r.org_id]
        specs.append(
            CouponSpec(
                code=c.code,
                applies_to=c.applies_to,
                duration=c.duration,
                redeemed_at=clock.aware(r.redeemed_at),
                percent_off=Decimal(c.percent_off) if c.percent_off is not None else None,
                amount_off=c.amount_off,
                currency=c.currency,
                months=c.months,
            )
        )
        used[c.code] = r.uses
    return out


def scenario_for(
    org: models.Org,
    acc: BillingAccount,
    period: str,
    covered_from: dt.datetime,
    covered_to: dt.datetime,
    tax_rate: Decimal,
    *,
    inputs: entitlements.BillingInputs | None = None,
    coupons: tuple[list[CouponSpec], dict[str, int]] | None = None,
    prices: Catalog | None = None,
) -> Scenario:
    """What billing rates for ``org`` over [covered_from, covered_to) of ``period``.

    ``inputs``, ``coupons`` and ``prices``: what the month close read once for a
    whole batch.
    """
    if inputs is None:
        inputs = entitlements.billing_inputs(org.id, covered_from, covered_to)
    lo, hi = clock.aware(covered_from), clock.aware(covered_to)
    usage = []
    for iv in inputs.on_demand:
        start, end = max(iv.start, lo), min(iv.end, hi)
        if end > start:
            usage.append(UsageInterval(tier=iv.tier, start=start, end=end))
    specs, used = coupons if coupons is not None else _coupons(org.id)
    return Scenario(
        currency=org.currency,
        period=period,
        timezone=org.timezone,
        tax_rate=tax_rate,
        catalog=prices or msgspec.convert(catalog.for_currency(org.currency), Catalog),
        registered_at=clock.aware(org.registered_at),
        on_demand=usage,
        flat=inputs.flat,
        coupons=specs,
        coupons_used=used,
        credit_balance=acc.credit_balance,
        carried_forward=acc.carried_balance,
    )


def _status_for(rated: Rated) -> InvoiceStatus:
    """The status a close creates an invoice in, by what the rating says is due."""
    return {
        "nothing_due": InvoiceStatus.SETTLED,
        "below_minimum": InvoiceStatus.CARRIED,
    }.get(rated.status, InvoiceStatus.DRAFT)


def _number(org_id: int, period: str, part: int) -> str:
    return f"MM-{org_id:05d}-{period.replace('-', '')}" + (f"-E{part}" if part else "")


def _apply(org_id: int, acc: BillingAccount, rated: Rated) -> None:
    """The account after an invoice: credit left, carried balance, coupon uses."""
    BillingAccount.update(
        credit_balance=rated.credit_remaining, carried_balance=rated.carried_forward
    ).where(BillingAccount.id == acc.id).execute()
    codes = [d.code for d in rated.discounts]
    if codes:
        ids = Coupon.select(Coupon.id).where(Coupon.code.in_(codes))
        Redemption.update(uses=Redemption.uses + 1).where(
            Redemption.org == org_id, Redemption.coupon.in_(ids)
        ).execute()


def _early_parts(org_id: int, period: str) -> list[Invoice]:
    """The early closes (charge-now, draft-now) of an org's period, in part order."""
    return list(
        Invoice.select(Invoice.part, Invoice.covered_to, Invoice.document)
        .where(Invoice.org == org_id, Invoice.period == period, Invoice.part > 0)
        .order_by(Invoice.part)
    )


def billed_before(
    parts: Sequence[Invoice], start: dt.datetime
) -> tuple[dt.datetime, dict[str, int]]:
    """Where the next close of a period starts and the On-Demand minutes per tier already
    billed, after the early closes ``parts`` (voided ones too: what an admin voided is
    forgiven, not billed again)."""
    covered_from = max((clock.aware(p.covered_to) for p in parts), default=start)
    return covered_from, carry.billed_minutes(_figures(p) for p in parts)


def _rating_input(
    cfg: Billing,
    org: models.Org,
    acc: BillingAccount,
    period: str,
    covered_from: dt.datetime,
    covered_to: dt.datetime,
    billed: Mapping[str, int] | None,
    final: bool,
) -> Scenario:
    """The scenario one close rates: the month's usage so far less what earlier closes billed."""
    start, _ = period_bounds(period, org.timezone)
    whole = scenario_for(org, acc, period, start, covered_to, cfg.tax_rate)
    return carry.for_close(
        whole, covered_from=covered_from, upto=covered_to, billed=billed or {}, final=final
    )


def _draft(
    cfg: Billing,
    org: models.Org,
    period: str,
    part: int,
    covered_from: dt.datetime,
    covered_to: dt.datetime,
    actor: str,
    *,
    billed: Mapping[str, int] | None = None,
    final: bool = True,
    action: str = "",
) -> tuple[Rated, Invoice | None]:
    """Rate and store one invoice (in the caller's transaction); None when nothing at all.

    ``billed``: On-Demand minutes per tier earlier invoices of the period billed;
    ``final``: the month close (else an early close, which carries what is below a
    whole billing unit to the next close: :mod:`billing.carry`).
    """
    acc = account(org.id)
    scenario = _rating_input(cfg, org, acc, period, covered_from, covered_to, billed, final)
    try:
        rated = rate(scenario)
    except BillingInputError as e:  # recorded facts that cannot be rated: say which org
        raise ApplianceError(f"org {org.name}: period {period}: {e}") from None
    inv = None
    if rated.status != "nothing_due" or rated.subtotal > 0 or rated.previous_balance > 0:
        inv = Invoice.create(
            org=org.id,
            number=_number(org.id, period, part),
            period=period,
            part=part,
            covered_from=_naive(covered_from),
            covered_to=_naive(covered_to),
            mode=org.stripe_mode,
            currency=org.currency,
            status=states.check_initial(_status_for(rated)),
            total=rated.total,
            document=encode_invoice(rated).decode(),
            scenario=msgspec.json.encode(scenario).decode(),
        )
    _apply(org.id, acc, rated)
    audit.record(
        action or ("invoice.close" if part == 0 else "invoice.close_early"),
        actor=actor,
        org_id=org.id,
        target=f"invoice:{inv.id}" if inv else f"period:{period}",
        after={
            "period": period,
            "part": part,
            "status": rated.status,
            "invoice": inv.number if inv else None,
            "total": rated.total,
            "currency": rated.currency,
        },
    )
    return rated, inv


@dataclass
class CloseReport:
    closed: int = 0
    invoices: int = 0
    skipped: int = 0

    def doc(self) -> contract.CloseResult:
        return contract.CloseResult(
            closed=self.closed, invoices=self.invoices, skipped=self.skipped
        )


def close_due(cfg: Billing, now: dt.datetime | None = None, *, actor: str = "") -> CloseReport:
    """Close every (org, month) that is due and not closed yet: the job and its catch-up.

    In batches of ``cfg.batch`` closes, each one transaction (:func:`_close_batch`).
    Replicas may run it at once: their batches take turns (:data:`CLOSE_LOCK`), and
    each skips what an earlier batch closed; the unique ``PeriodClose`` rows stay
    the guarantee.
    """
    now = now or clock.now()
    orgs = list(models.Org.select().order_by(models.Org.id))
    wanted = [(org, p) for org in orgs for p in due_periods(org, now)]
    report = CloseReport()
    if not wanted:
        return report
    labels = sorted({p for _, p in wanted})
    done: set[tuple[int, str]] = set()
    for i in range(0, len(labels), 500):
        q = PeriodClose.select(PeriodClose.org, PeriodClose.period).where(
            PeriodClose.period.in_(labels[i : i + 500])
        )
        done |= set(q.tuples())
    todo = [(org, p) for org, p in wanted if (org.id, p) not in done]
    report.skipped = len(wanted) - len(todo)
    for b, i in enumerate(range(0, len(todo), cfg.batch)):
        with audit.write_transaction():
            closed, invoices = _close_batch(
                cfg, todo[i : i + cfg.batch], actor or audit.SCHEDULER, crash_point=b == 1
            )
        report.closed += closed
        report.invoices += invoices
        report.skipped += len(todo[i : i + cfg.batch]) - closed
    if report.closed:
        log.info("month close: %s", report.doc())
    return report


CLOSE_LOCK = 0x6D6D_434C_4F53  # "mmCLOS": PostgreSQL advisory lock of a month-close batch


def _close_batch(
    cfg: Billing, batch: list[tuple[models.Org, str]], actor: str, *, crash_point: bool = False
) -> tuple[int, int]:
    """Close the (org, period) pairs of one batch (in the caller's transaction).

    Under the batch lock (SQLite: the write lock, taken at BEGIN), drop the pairs
    closed meanwhile; read what the rest need, one query per kind for the whole
    batch; rate in memory (an org's months in order, each on the account the
    previous one left); write one insert per table. Returns (closes, drafts).
    """
    if isinstance(database.obj, pw.PostgresqlDatabase):
        database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (CLOSE_LOCK,))
    closed_before = set(
        PeriodClose.select(PeriodClose.org, PeriodClose.period)
        .where(
            PeriodClose.org.in_(sorted({org.id for org, _ in batch})),
            PeriodClose.period.in_(sorted({p for _, p in batch})),
        )
        .tuples()
    )
    mine = [(org, p) for org, p in batch if (org.id, p) not in closed_before]
    if not mine:
        return 0, 0
    org_ids = sorted({org.id for org, _ in mine})
    accounts = _accounts_for(org_ids)
    before = {i: (a.credit_balance, a.carried_balance) for i, a in accounts.items()}
    parts: dict[tuple[int, str], list[Invoice]] = {}
    for inv in Invoice.select().where(
        Invoice.org.in_(org_ids),
        Invoice.period.in_(sorted({p for _, p in mine})),
        Invoice.part > 0,
    ):
        parts.setdefault((inv.org_id, inv.period), []).append(inv)
    # Each close rates the month from its first day (less what early closes billed:
    # billing.carry), so a month's minutes are rounded once, however often it was closed.
    spans = []
    carried: list[tuple[dt.datetime, dict[str, int]]] = []
    for org, period in mine:
        start, end = period_bounds(period, org.timezone)
        spans.append((org, start, end))
        carried.append(billed_before(parts.get((org.id, period), []), start))
    inputs = entitlements.billing_inputs_many(spans)
    coupons = _coupons_many(org_ids)
    prices: dict[str, Catalog] = {}  # one (read-only) catalog per currency for the batch
    uses: dict[int, list[str]] = {}  # coupon codes applied, per org
    closes: list[tuple[models.Org, str, Rated, dict[str, Any] | None]] = []
    for (org, period), (_, start, covered_to), facts, (covered_from, billed) in zip(
        mine, spans, inputs, carried, strict=True
    ):
        acc = accounts[org.id]
        whole = scenario_for(
            org,
            acc,
            period,
            start,
            covered_to,
            cfg.tax_rate,
            inputs=facts,
            coupons=coupons[org.id],
            prices=prices.get(org.currency)
            or prices.setdefault(
                org.currency, msgspec.convert(catalog.for_currency(org.currency), Catalog)
            ),
        )
        scenario = carry.for_close(
            whole, covered_from=covered_from, upto=covered_to, billed=billed, final=True
        )
        try:
            rated = rate(scenario)
        except BillingInputError as e:  # recorded facts that cannot be rated: say which org
            raise ApplianceError(f"org {org.name}: period {period}: {e}") from None
        row = None
        if rated.status != "nothing_due" or rated.subtotal > 0 or rated.previous_balance > 0:
            row = dict(
                org=org.id,
                number=_number(org.id, period, 0),
                period=period,
                part=0,
                covered_from=_naive(covered_from),
                covered_to=_naive(covered_to),
                mode=org.stripe_mode,
                currency=org.currency,
                status=_status_for(rated),
                total=rated.total,
                document=encode_invoice(rated).decode(),
                scenario=msgspec.json.encode(scenario).decode(),
            )
        closes.append((org, period, rated, row))
        # The org's next month in this batch rates on what this one leaves.
        acc.credit_balance, acc.carried_balance = rated.credit_remaining, rated.carried_forward
        codes = [d.code for d in rated.discounts]
        if codes:
            uses.setdefault(org.id, []).extend(codes)
            _, used = coupons[org.id]
            for code in codes:
                used[code] = used.get(code, 0) + 1
    invoice_rows = [row for *_, row in closes if row is not None]
    invoice_ids = {
        (org_id, period): inv_id
        for inv_id, org_id, period in bulk.insert_rows(
            Invoice, invoice_rows, returning=(Invoice.id, Invoice.org, Invoice.period), chunk=200
        )
    }
    if crash_point:
        faults.point("month_close_mid")
    close_rows = [
        {
            "org": org.id,
            "period": period,
            "outcome": rated.status,
            "invoice_id": invoice_ids.get((org.id, period)),
        }
        for org, period, rated, _ in closes
    ]
    bulk.insert_rows(PeriodClose, close_rows)  # the unique (org, period): exactly once
    changed = [a for i, a in accounts.items() if (a.credit_balance, a.carried_balance) != before[i]]
    if changed:
        BillingAccount.bulk_update(
            changed,
            fields=[BillingAccount.credit_balance, BillingAccount.carried_balance],
            batch_size=200,
        )
    if uses:  # a statement per (coupon, times used in this batch), not per org
        bumps: dict[tuple[str, int], list[int]] = {}
        for org_id, codes in uses.items():
            for code in set(codes):
                bumps.setdefault((code, codes.count(code)), []).append(org_id)
        coupon_ids = dict(
            Coupon.select(Coupon.code, Coupon.id)
            .where(Coupon.code.in_(sorted({code for code, _ in bumps})))
            .tuples()
        )
        for (code, times), org_ids in bumps.items():
            Redemption.update(uses=Redemption.uses + times).where(
                Redemption.org.in_(org_ids), Redemption.coupon == coupon_ids[code]
            ).execute()
    audit.record_many(
        [
            audit.Entry(
                "invoice.close",
                actor=actor,
                org_id=org.id,
                target=(
                    f"invoice:{invoice_ids[(org.id, period)]}"
                    if row is not None
                    else f"period:{period}"
                ),
                after={
                    "period": period,
                    "part": 0,
                    "status": rated.status,
                    "invoice": row["number"] if row is not None else None,
                    "total": rated.total,
                    "currency": rated.currency,
                },
            )
            for org, period, rated, row in closes
        ]
    )
    notify.invoices_drafted(
        [
            (org, invoice_ids[(org.id, period)], row)
            for org, period, _, row in closes
            if row is not None and row["status"] == "draft"
        ],
        cfg.link_base,
    )
    drafts = sum(1 for *_, row in closes if row is not None and row["status"] == "draft")
    return len(closes), drafts


def _accounts_for(org_ids: list[int]) -> dict[int, BillingAccount]:
    """The billing accounts of ``org_ids`` (made where missing), locked on PostgreSQL so a
    credit granted meanwhile waits for the close instead of being overwritten."""

    def read() -> dict[int, BillingAccount]:
        q = BillingAccount.select().where(BillingAccount.org.in_(org_ids))
        if isinstance(database.obj, pw.PostgresqlDatabase):
            q = q.order_by(BillingAccount.id).for_update()
        return {a.org_id: a for a in q}

    found = read()
    missing = [i for i in org_ids if i not in found]
    if not missing:
        return found
    BillingAccount.insert_many([{"org": i} for i in missing]).on_conflict_ignore().execute()
    return read()


def close_early(cfg: Billing, org_id: int, *, actor: str) -> Invoice:
    """Close the org's current month up to now (an admin's "charge now"): an approved invoice."""
    return _close_now(cfg, models.Org.get_by_id(org_id), actor=actor, approve=True)


def close_draft(cfg: Billing, org_id: int, *, actor: str) -> Invoice:
    """Close the org's current month up to now as a draft to review, approve and charge.

    Test mode only: it lets an admin trying the appliance see the monthly approval
    without waiting for a month to end. Like charge-now it is an early close, so the
    month close bills only what came after it.
    """
    org = models.Org.get_by_id(org_id)
    if cfg.mode == "live" or org.stripe_mode == "live":
        raise Conflict(
            "draft: closing the current month as a draft is for Stripe test mode only "
            "(live invoices are drafted by the month close)"
        )
    return _close_now(cfg, org, actor=actor, approve=False)


def _close_now(cfg: Billing, org: models.Org, *, actor: str, approve: bool) -> Invoice:
    now = clock.now()
    local = now.astimezone(ZoneInfo(org.timezone))
    period = label(local.year, local.month)
    start, _ = period_bounds(period, org.timezone)
    with audit.write_transaction():
        if (
            Invoice.select()
            .where(Invoice.org == org.id, Invoice.period == period, Invoice.part == 0)
            .exists()
        ):
            raise Conflict(f"period {period} is already closed")
        parts = _early_parts(org.id, period)
        covered_from, billed = billed_before(parts, start)
        part = max([p.part for p in parts], default=0) + 1
        rated, inv = _draft(
            cfg,
            org,
            period,
            part,
            covered_from,
            now,
            actor,
            billed=billed,
            final=False,
            action="invoice.close_early" if approve else "invoice.close_draft",
        )
        if inv is None or inv.status != InvoiceStatus.DRAFT:
            what = {
                "nothing_due": "nothing is due",
                "below_minimum": (
                    f"the total {rated.total} is below the minimum charge "
                    f"{rated.minimum_charge} and is carried to the month close"
                ),
            }.get(rated.status, rated.status)
            if inv is None:
                raise Conflict(
                    f"nothing to {'charge' if approve else 'close'} for {period} so far: {what}"
                )
            return inv
        if approve:
            _approve(inv, actor)
    return inv


# --- reading --------------------------------------------------------------------------


def quote_to_date(cfg: Billing, org_id: int) -> contract.Quote:
    """What the month close would bill if the month ended now. Writes nothing."""
    org = models.Org.get_by_id(org_id)
    now = clock.now()
    local = now.astimezone(ZoneInfo(org.timezone))
    period = label(local.year, local.month)
    start, _ = period_bounds(period, org.timezone)
    covered_from, billed = billed_before(_early_parts(org.id, period), start)
    scenario = _rating_input(cfg, org, account(org.id), period, covered_from, now, billed, True)
    try:
        rated = rate(scenario)
    except BillingInputError as e:
        raise ApplianceError(f"org {org.name}: period {period}: {e}") from None
    figures = msgspec.json.decode(encode_invoice(rated), type=contract.RatedInvoice)
    return contract.Quote(
        **msgspec.structs.asdict(figures),
        as_of=now.isoformat(),
        covered_from=covered_from.isoformat(),
    )


def _figures(inv: Invoice) -> Rated:
    return decode_invoice(inv.document.encode())


def summary(inv: Invoice) -> contract.InvoiceSummary:
    return contract.InvoiceSummary(**_summary_fields(inv))


def doc(inv: Invoice) -> contract.InvoiceDoc:
    return contract.InvoiceDoc(
        **_summary_fields(inv),
        invoice=msgspec.json.decode(inv.document, type=contract.RatedInvoice),
        adjustments=msgspec.json.decode(inv.adjustments, type=list[contract.Adjustment]),
    )


def _summary_fields(inv: Invoice) -> dict[str, Any]:
    org = inv.org
    tz = org.timezone
    return {
        "id": inv.id,
        "number": inv.number,
        "org_id": org.id,
        "org": org.name,
        "period": inv.period,
        "part": inv.part,
        "early": inv.part > 0,
        "covered_from": _local(inv.covered_from, tz),
        "covered_to": _local(inv.covered_to, tz),
        "mode": inv.mode,
        "currency": inv.currency,
        "status": inv.status,
        "total": inv.total,
        "attempts": inv.attempts,
        "next_retry_at": _local(inv.next_retry_at, tz),
        "last_error": inv.last_error or None,
        "action_url": inv.action_url or None,
        "payment_intent": inv.payment_intent or None,
        "refunded": inv.refunded,
        "created_at": _local(inv.created_at, tz),
        "approved_at": _local(inv.approved_at, tz),
        "approved_by": inv.approved_by or None,
        "paid_at": _local(inv.paid_at, tz),
    }


def _may_see(caller: Any, inv: Invoice) -> None:
    if inv.org_id != caller.org_id and not caller.superuser:
        raise NotFound(f"invoice {inv.id} not found in this org")


def get(caller: Any, invoice_id: int) -> Invoice:
    inv = Invoice.get_or_none(Invoice.id == invoice_id)
    if inv is None:
        raise NotFound(f"invoice {invoice_id} not found")
    _may_see(caller, inv)
    return inv


STATUSES = tuple(InvoiceStatus)


def list_invoices(
    caller: Any, *, status: str | None, period: str | None, all_orgs: bool, limit: int = 200
) -> list[contract.InvoiceSummary]:
    if status is not None and status not in STATUSES:
        raise ApplianceError(f"status: must be one of {', '.join(STATUSES)}")
    if period is not None:
        parse_label(period)
    if not 1 <= limit <= 1000:
        raise ApplianceError("limit: must be between 1 and 1000")
    q = Invoice.select(Invoice, models.Org).join(models.Org)
    if all_orgs:
        caller.require_superuser()
    else:
        q = q.where(Invoice.org == caller.org_id)
    if status:
        q = q.where(Invoice.status == status)
    if period:
        q = q.where(Invoice.period == period)
    return [summary(i) for i in q.order_by(Invoice.id.desc()).limit(limit)]


# --- admin actions --------------------------------------------------------------------


def move(
    inv: Invoice,
    status: InvoiceStatus,
    action: str,
    *,
    actor: str,
    after: dict[str, Any],
    before: dict[str, Any] | None = None,
    **changes: Any,
) -> None:
    """The one place an invoice's status changes: checked against the lifecycle
    (:data:`states.INVOICE_MOVES`), set with its other fields, and logged before and
    after, as one step of the caller's transaction."""
    states.check_invoice(inv.status, status, f"invoice {inv.number}")
    _save(inv, action, actor, before, after, {"status": status, **changes})


def amend(
    inv: Invoice,
    action: str,
    *,
    actor: str,
    after: dict[str, Any],
    before: dict[str, Any] | None = None,
    **changes: Any,
) -> None:
    """Change an invoice's other fields, logged like a move; its status stays."""
    if "status" in changes:
        raise TypeError("an invoice's status changes only through move()")
    _save(inv, action, actor, before, after, changes)


def _save(
    inv: Invoice,
    action: str,
    actor: str,
    before: dict[str, Any] | None,
    after: dict[str, Any],
    changes: dict[str, Any],
) -> None:
    was = {"status": inv.status, **(before or {})}
    for name, value in changes.items():
        setattr(inv, name, value)
    inv.save()
    audit.record(
        action,
        actor=actor,
        org_id=inv.org_id,
        target=f"invoice:{inv.id}",
        before=was,
        after={"status": inv.status, **after},
    )


def _approve(inv: Invoice, actor: str) -> None:
    move(
        inv,
        InvoiceStatus.APPROVED,
        "invoice.approve",
        actor=actor,
        after={"total": inv.total, "currency": inv.currency},
        approved_at=clock.utcnow(),
        approved_by=actor,
    )


def approve(caller: Any, invoice_id: int, expected_total: int | None, *, actor: str) -> Invoice:
    """draft → approved. ``expected_total``: the total the admin saw (409 if it changed)."""
    with audit.write_transaction():
        inv = get(caller, invoice_id)
        if inv.status != InvoiceStatus.DRAFT:
            raise Conflict(f"invoice {inv.number} is {inv.status}; only a draft can be approved")
        if expected_total is not None and expected_total != inv.total:
            raise Conflict(
                f"expected_total: the invoice total is {inv.total}, not {expected_total} "
                "(it changed since you looked)"
            )
        _approve(inv, actor)
    return inv


def void(caller: Any, invoice_id: int, reason: str, *, actor: str) -> Invoice:
    """Cancel an uncharged invoice and give back the credit, coupon uses and carried balance."""
    reason = _reason(reason)
    with audit.write_transaction():
        inv = get(caller, invoice_id)
        if not states.may_move_invoice(inv.status, InvoiceStatus.VOID):
            raise Conflict(f"invoice {inv.number} is {inv.status}; it cannot be voided")
        pending = ChargeAttempt.select().where(
            ChargeAttempt.invoice == inv.id,
            ChargeAttempt.state.in_((AttemptState.PENDING, AttemptState.PROCESSING)),
        )
        if pending.exists():
            raise Conflict(f"invoice {inv.number} has a payment in progress; wait for its outcome")
        rated = _figures(inv)
        acc = account(inv.org_id)
        # Only the org's own credit goes back; what adjustments took off was never its.
        own_credit = max(0, rated.credit_applied - _adjusted(inv))
        BillingAccount.update(
            credit_balance=BillingAccount.credit_balance + own_credit,
            carried_balance=BillingAccount.carried_balance
            + rated.previous_balance
            - rated.carried_forward,
        ).where(BillingAccount.id == acc.id).execute()
        codes = [d.code for d in rated.discounts]
        if codes:
            ids = Coupon.select(Coupon.id).where(Coupon.code.in_(codes))
            Redemption.update(uses=Redemption.uses - 1).where(
                Redemption.org == inv.org_id, Redemption.coupon.in_(ids), Redemption.uses > 0
            ).execute()
        move(
            inv,
            InvoiceStatus.VOID,
            "invoice.void",
            actor=actor,
            after={"reason": reason},
            next_retry_at=None,
        )
    return inv


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ApplianceError("reason: required (it goes to the audit log and the invoice)")
    if len(reason) > 500:
        raise ApplianceError("reason: at most 500 characters")
    return reason


def _adjusted(inv: Invoice) -> int:
    """What adjustments took off this invoice so far (credit that is not the org's)."""
    return sum(int(a["amount"]) for a in json.loads(inv.adjustments))


def adjust(caller: Any, invoice_id: int, amount: int, reason: str, *, actor: str) -> Invoice:
    """Take ``amount`` off a draft or approved invoice, with a reason; re-rated.

    An adjustment lowers this invoice only: at most down to nothing before tax
    (what is left after coupons and credit), never below, so it can never turn
    into credit the org keeps. Credit is granted by a superuser (``add_credit``).
    """
    reason = _reason(reason)
    check_amount(amount)
    with audit.write_transaction():
        inv = get(caller, invoice_id)
        if inv.status not in OPEN:
            raise Conflict(f"invoice {inv.number} is {inv.status}; only draft/approved adjust")
        old = _figures(inv)
        if amount > old.net:
            raise ApplianceError(
                f"amount: at most {old.net} can be taken off invoice {inv.number} "
                f"(its amount before tax); {amount} would leave credit behind"
            )
        scenario = msgspec.json.decode(inv.scenario.encode(), type=Scenario)
        # The rating takes the adjustment as credit; bounded by net, all of it is used here.
        scenario = msgspec.structs.replace(
            scenario, credit_balance=scenario.credit_balance + amount
        )
        new = rate(scenario)
        if new.credit_remaining != old.credit_remaining:  # the bound above makes this impossible
            raise Conflict(f"invoice {inv.number}: this adjustment would change the org's credit")
        acc = account(inv.org_id)
        BillingAccount.update(
            carried_balance=BillingAccount.carried_balance
            + new.carried_forward
            - old.carried_forward,
        ).where(BillingAccount.id == acc.id).execute()
        adjustments = json.loads(inv.adjustments)
        adjustments.append(
            {"amount": amount, "reason": reason, "by": actor, "at": clock.now().isoformat()}
        )
        fields = {
            "scenario": msgspec.json.encode(scenario).decode(),
            "document": encode_invoice(new).decode(),
            "total": new.total,
            "adjustments": json.dumps(adjustments),
        }
        logged = {
            "actor": actor,
            "before": {"total": inv.total},
            "after": {"total": new.total, "amount": amount, "reason": reason},
        }
        if new.status == "chargeable":
            amend(inv, "invoice.adjust", **logged, **fields)
        else:  # below the minimum now, or nothing left to pay
            move(inv, _status_for(new), "invoice.adjust", **logged, **fields)
    return inv


# --- coupons and credits --------------------------------------------------------------


def coupon_doc(c: Coupon, **extra: Any) -> contract.Coupon:
    return contract.Coupon(
        code=c.code,
        percent_off=c.percent_off,
        amount_off=c.amount_off,
        currency=c.currency,
        applies_to=c.applies_to,
        duration=c.duration,
        months=c.months,
        **extra,
    )


def _coupon_orgs(c: Coupon) -> list[int] | None:
    return None if c.orgs is None else [int(i) for i in json.loads(c.orgs)]


def _org_ids(names: Any) -> list[int] | None:
    """Org names → ids for a coupon limited to them (None: every org)."""
    if names is None:
        return None
    if not isinstance(names, list) or not names or len(names) > 1000:
        raise ApplianceError("orgs: a list of 1-1000 org names (leave it out for every org)")
    found = {o.name: o.id for o in models.Org.select().where(models.Org.name.in_(names))}
    for name in names:
        if name not in found:
            raise ApplianceError(f"orgs: no org named {name!r}")
    return sorted(set(found.values()))


def _full_doc(c: Coupon, names: dict[int, str], redemptions: int) -> contract.Coupon:
    limited = _coupon_orgs(c)
    return coupon_doc(
        c,
        orgs=None if limited is None else [names.get(i, f"#{i}") for i in limited],
        redemptions=redemptions,
    )


def create_coupon(spec: dict[str, Any], *, actor: str) -> contract.Coupon:
    """A coupon of DESIGN §4.1 (checked by the same rules the rating uses)."""
    code = spec.get("code")
    if not isinstance(code, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", code):
        raise ApplianceError("code: 1-64 letters, digits, _ and -")
    percent = spec.get("percent_off")
    amount = spec.get("amount_off")
    if (percent is None) == (amount is None):
        raise ApplianceError("percent_off: give exactly one of percent_off and amount_off")
    if percent is not None:
        try:
            p = Decimal(str(percent))
        except InvalidOperation:
            raise ApplianceError("percent_off: must be a number") from None
        if not p.is_finite() or not 0 < p <= 100:
            raise ApplianceError("percent_off: must be more than 0 and at most 100")
        percent = str(p.normalize())
    if amount is not None:
        check_amount(amount, "amount_off")
        if spec.get("currency") not in CURRENCIES:
            raise ApplianceError(f"currency: amount_off needs one of {', '.join(CURRENCIES)}")
    applies = spec.get("applies_to", "all")
    if applies not in ("all", "on_demand", "flat"):
        raise ApplianceError("applies_to: must be one of all, on_demand, flat")
    duration = spec.get("duration", "once")
    if duration not in ("once", "repeating", "forever"):
        raise ApplianceError("duration: must be one of once, repeating, forever")
    months = spec.get("months")
    if duration == "repeating" and (
        not isinstance(months, int) or isinstance(months, bool) or not 1 <= months <= 1200
    ):
        raise ApplianceError("months: a repeating coupon needs months from 1 to 1200")
    if duration != "repeating" and months is not None:
        raise ApplianceError("months: only for a repeating coupon")
    orgs = _org_ids(spec.get("orgs"))
    with audit.write_transaction():
        try:
            with audit.write_transaction():
                c = Coupon.create(
                    code=code,
                    percent_off=percent,
                    amount_off=amount,
                    currency=spec.get("currency") if amount is not None else None,
                    applies_to=applies,
                    duration=duration,
                    months=months,
                    orgs=None if orgs is None else json.dumps(orgs),
                )
        except pw.IntegrityError:
            raise Conflict(f"code: a coupon {code!r} already exists") from None
        names = {o.id: o.name for o in models.Org.select().where(models.Org.id.in_(orgs or []))}
        doc = _full_doc(c, names, 0)
        audit.record(
            "coupon.create", actor=actor, target=f"coupon:{code}", after=msgspec.to_builtins(doc)
        )
    return doc


def list_coupons(caller: Any) -> list[contract.Coupon]:
    """Every coupon (with who may redeem it) for a superuser; the org's redeemed ones else.

    Codes are secrets handed to chosen customers: listing them to every org would
    give each org every partner's discount.
    """
    if caller.superuser:
        counts = dict(
            Redemption.select(Redemption.coupon, pw.fn.COUNT(Redemption.id))
            .group_by(Redemption.coupon)
            .tuples()
        )
        names = {o.id: o.name for o in models.Org.select(models.Org.id, models.Org.name)}
        return [
            _full_doc(c, names, counts.get(c.id, 0)) for c in Coupon.select().order_by(Coupon.id)
        ]
    org = models.Org.get_by_id(caller.org_id)
    rows = (
        Redemption.select(Redemption, Coupon)
        .join(Coupon)
        .where(Redemption.org == caller.org_id)
        .order_by(Redemption.redeemed_at, Redemption.id)
    )
    return [
        coupon_doc(r.coupon, redeemed_at=_local(r.redeemed_at, org.timezone), uses=r.uses)
        for r in rows
    ]


def redeem(org_id: int, code: str, *, actor: str) -> contract.Account:
    """Redeem ``code`` for the org. An unknown code and a code limited to other orgs get
    the same answer, so guessing tells nobody which codes exist."""
    with audit.write_transaction():
        c = Coupon.get_or_none(Coupon.code == code)
        limited = _coupon_orgs(c) if c is not None else None
        if c is None or (limited is not None and org_id not in limited):
            refused = True
        else:
            refused = False
            try:
                with audit.write_transaction():
                    r = Redemption.create(org=org_id, coupon=c.id, redeemed_at=clock.utcnow())
            except pw.IntegrityError:
                raise Conflict(f"code: this org already redeemed {code!r}") from None
            audit.record(
                "coupon.redeem",
                actor=actor,
                org_id=org_id,
                target=f"coupon:{code}",
                after={"code": code, "redeemed_at": clock.aware(r.redeemed_at).isoformat()},
            )
    if refused:
        # Logged (a run of these is someone guessing), in words that do not say why.
        audit.record("coupon.redeem_refused", actor=actor, org_id=org_id, target="coupon:?")
        raise NotFound("code: no such coupon for this org")
    return account_doc(org_id)


def add_credit(org_id: int, amount: int, reason: str, *, actor: str) -> contract.Account:
    """A thank-you credit: taken off the next invoices before tax (rule 7)."""
    reason = _reason(reason)
    check_amount(amount)
    acc = account(org_id)
    with audit.write_transaction():
        BillingAccount.update(credit_balance=BillingAccount.credit_balance + amount).where(
            BillingAccount.id == acc.id
        ).execute()
        audit.record(
            "credit.add",
            actor=actor,
            org_id=org_id,
            target=f"org:{org_id}",
            after={"amount": amount, "reason": reason},
        )
    return account_doc(org_id)


def account_doc(org_id: int, mode: str | None = None) -> contract.Account:
    org = models.Org.get_by_id(org_id)
    acc = account(org_id)
    cards = {c.mode: c for c in StripeCustomer.select().where(StripeCustomer.org == org_id)}
    card = cards.get(org.stripe_mode)
    coupons = [
        contract.RedeemedCoupon(
            code=r.coupon.code, redeemed_at=_local(r.redeemed_at, org.timezone), uses=r.uses
        )
        for r in Redemption.select(Redemption, Coupon).join(Coupon).where(Redemption.org == org_id)
    ]
    return contract.Account(
        org_id=org.id,
        org=org.name,
        currency=org.currency,
        timezone=org.timezone,
        mode=org.stripe_mode,
        appliance_mode=mode,
        credit_balance=acc.credit_balance,
        carried_balance=acc.carried_balance,
        card=(card.card or None) if card else None,
        customer=(card.customer or None) if card else None,
        coupons=coupons,
    )


def org_for(caller: Any, org_id: int | None) -> int:
    """The caller's org, or ``org_id`` for an appliance superuser."""
    if org_id is None or org_id == caller.org_id:
        return int(caller.org_id)
    if not caller.superuser:
        raise Forbidden("org_id: only an appliance superuser may act on another org")
    if models.Org.get_or_none(models.Org.id == org_id) is None:
        raise NotFound(f"org_id: no org {org_id}")
    return org_id
