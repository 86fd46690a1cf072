"""Test-only fault injection: die like ``kill -9`` at a named point.

Set ``MOCKMOCK_CRASH_AT`` to one of :data:`POINTS` and the appliance sends itself
SIGKILL when it gets there (no cleanup, no flush, no commit), which is how the
crash tests prove the outbox and the month close are exactly-once. Never set
it in production; unset, :func:`point` costs one dictionary lookup.
"""

from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger(__name__)

POINTS = frozenset(
    {
        "after_charge_call",  # Stripe created the PaymentIntent; the appliance has not recorded it
        "month_close_mid",  # the first batch is committed; the second is half written
    }
)


def point(name: str) -> None:
    if os.environ.get("MOCKMOCK_CRASH_AT") == name:
        log.error("MOCKMOCK_CRASH_AT=%s: killing the process (test-only)", name)
        os.kill(os.getpid(), signal.SIGKILL)
