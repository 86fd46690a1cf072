"""mockmock billing: pure, deterministic rating (DESIGN.md §4.1) and its quote CLI.

The appliance persists and schedules; this package only computes. Import the
CLI from :mod:`billing.cli` (it needs click); everything here is I/O-free.
"""

from billing.checks import decode_scenario
from billing.errors import BillingError, BillingInputError
from billing.invoice import Invoice, decode_invoice, encode_invoice
from billing.rating import rate
from billing.scenario import Scenario

__all__ = [
    "BillingError",
    "BillingInputError",
    "Invoice",
    "Scenario",
    "decode_invoice",
    "decode_scenario",
    "encode_invoice",
    "rate",
]
