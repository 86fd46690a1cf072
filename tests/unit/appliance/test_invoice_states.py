"""Invoice and charge-attempt lifecycles: one table each, enforced by the one move.

Every pair of statuses is tried: the moves the table lists pass, every other one
raises (in the pure check and in ``service.move`` / ``payments.move_attempt`` on
real rows, which then keep their status and log nothing). A source scan proves no
module of appliance/invoices writes a status anywhere else.
"""

from __future__ import annotations

import ast
import datetime as dt
import itertools
from pathlib import Path

import pytest

from appliance import models
from appliance.audit.models import AuditEntry
from appliance.invoices import payments, service, states
from appliance.invoices.models import ChargeAttempt, Invoice
from appliance.invoices.states import (
    ATTEMPT_MOVES,
    INVOICE_MOVES,
    AttemptState,
    IllegalMove,
    InvoiceStatus,
)

INVOICE_PAIRS = list(itertools.product(InvoiceStatus, InvoiceStatus))
ATTEMPT_PAIRS = list(itertools.product(AttemptState, AttemptState))
INVOICES = Path(__file__).parents[3] / "appliance" / "invoices"


def test_every_status_has_a_row_and_every_row_names_statuses() -> None:
    assert set(INVOICE_MOVES) == set(InvoiceStatus)
    assert set(ATTEMPT_MOVES) == set(AttemptState)
    for before, after in INVOICE_MOVES.items():
        assert before not in after, f"{before} -> {before} is no move"
    for before, after in ATTEMPT_MOVES.items():
        assert before not in after, f"{before} -> {before} is no move"


def test_every_status_is_reachable_from_a_status_a_close_creates() -> None:
    seen, todo = set(states.INITIAL), list(states.INITIAL)
    while todo:
        for nxt in INVOICE_MOVES[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    assert seen == set(InvoiceStatus)


def test_the_lifecycle_a_month_goes_through_is_legal() -> None:
    path = ["draft", "approved", "charging", "requires_action", "failed", "charging", "paid"]
    for before, after in itertools.pairwise(path):
        states.check_invoice(before, InvoiceStatus(after))
    states.check_invoice("paid", InvoiceStatus.REFUNDED)


@pytest.mark.parametrize(("before", "after"), INVOICE_PAIRS, ids=lambda s: str(s))
def test_an_invoice_moves_only_as_the_table_says(before, after) -> None:
    if after in INVOICE_MOVES[before]:
        states.check_invoice(before, after)
    else:
        with pytest.raises(IllegalMove, match=f"is {before}; it cannot become {after}"):
            states.check_invoice(before, after)


@pytest.mark.parametrize(("before", "after"), ATTEMPT_PAIRS, ids=lambda s: str(s))
def test_an_attempt_moves_only_as_the_table_says(before, after) -> None:
    if after in ATTEMPT_MOVES[before]:
        states.check_attempt(before, after)
    else:
        with pytest.raises(IllegalMove, match=f"is {before}; it cannot become {after}"):
            states.check_attempt(before, after)


def test_a_close_creates_only_draft_carried_or_settled() -> None:
    for status in InvoiceStatus:
        if status in states.INITIAL:
            assert states.check_initial(status) == status
        else:
            with pytest.raises(IllegalMove):
                states.check_initial(status)


# --- the moves on real rows ---------------------------------------------------------------


def _invoice(org: models.Org) -> Invoice:
    now = dt.datetime(2026, 10, 1)
    return Invoice.create(
        org=org.id,
        number="MM-TEST",
        period="2026-10",
        covered_from=now,
        covered_to=now,
        mode="test",
        currency="JPY",
        status="draft",
        total=1000,
        document="{}",
        scenario="{}",
    )


def test_move_refuses_every_illegal_move_and_writes_nothing(org: models.Org) -> None:
    inv = _invoice(org)
    refused = 0
    for before, after in INVOICE_PAIRS:
        Invoice.update(status=before).where(Invoice.id == inv.id).execute()
        row = Invoice.get_by_id(inv.id)
        logged = AuditEntry.select().count()
        if after in INVOICE_MOVES[before]:
            service.move(row, after, "invoice.test", actor="test", after={}, last_error="x")
            assert Invoice.get_by_id(inv.id).status == after
            assert AuditEntry.select().count() == logged + 1
            continue
        with pytest.raises(IllegalMove):
            service.move(row, after, "invoice.test", actor="test", after={}, last_error="moved")
        again = Invoice.get_by_id(inv.id)
        assert (again.status, again.last_error) != (after, "moved")
        assert again.status == before
        assert AuditEntry.select().count() == logged
        refused += 1
    assert refused == len(INVOICE_PAIRS) - sum(len(v) for v in INVOICE_MOVES.values())


def test_amend_never_changes_a_status(org: models.Org) -> None:
    inv = _invoice(org)
    with pytest.raises(TypeError, match="only through move"):
        service.amend(inv, "invoice.test", actor="test", after={}, status="paid")
    assert Invoice.get_by_id(inv.id).status == "draft"


def test_move_attempt_refuses_every_illegal_move(org: models.Org) -> None:
    inv = _invoice(org)
    att = ChargeAttempt.create(
        invoice=inv.id,
        attempt=1,
        idempotency_key="k",
        mode="test",
        amount=1000,
        currency="JPY",
        customer="cus_x",
    )
    for before, after in ATTEMPT_PAIRS:
        ChargeAttempt.update(state=before).where(ChargeAttempt.id == att.id).execute()
        row = ChargeAttempt.get_by_id(att.id)
        if after in ATTEMPT_MOVES[before]:
            payments.move_attempt(row, after, error_code="x")
            assert ChargeAttempt.get_by_id(att.id).state == after
        else:
            with pytest.raises(IllegalMove):
                payments.move_attempt(row, after)
            assert ChargeAttempt.get_by_id(att.id).state == before


# --- nothing else writes a status -------------------------------------------------------

MOVERS = {"move", "_save", "move_attempt"}
"""The functions that may write ``status`` / ``state`` (after the table's check)."""


def _writes(tree: ast.AST) -> list[tuple[int, str]]:
    """Where a function other than the movers writes a status or state field."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST, inside: str) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            inside = node.name
        if inside not in MOVERS:
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, ast.AugAssign | ast.AnnAssign):
                targets = [node.target]
            for t in targets:
                if isinstance(t, ast.Attribute) and t.attr in ("status", "state"):
                    found.append((node.lineno, f"assigns .{t.attr}"))
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("update", "insert", "replace")
                and any(k.arg in ("status", "state") for k in node.keywords)
            ):
                found.append((node.lineno, f".{node.func.attr}() writes a status"))
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "setattr":
                found.append((node.lineno, "setattr()"))
        for child in ast.iter_child_nodes(node):
            visit(child, inside)

    visit(tree, "")
    return found


def test_no_module_of_invoices_writes_a_status_outside_the_moves() -> None:
    offenders = []
    for path in sorted(INVOICES.rglob("*.py")):
        for line, what in _writes(ast.parse(path.read_text(), str(path))):
            offenders.append(f"{path.name}:{line}: {what}")
    assert offenders == []


def test_the_scan_finds_a_direct_write() -> None:
    sample = "def pay(inv):\n    inv.status = 'paid'\n    Invoice.update(state='x').execute()\n"
    assert [w for _, w in _writes(ast.parse(sample))] == [
        "assigns .status",
        ".update() writes a status",
    ]
