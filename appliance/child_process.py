"""Children of the appliance (its local agent, demo localstripe) that must not outlive it."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import sys
from typing import Any

_PR_SET_PDEATHSIG = 1
_SIGTERM = int(signal.SIGTERM)
_libc: Any = None
if sys.platform.startswith("linux"):
    with contextlib.suppress(OSError):
        _libc = ctypes.CDLL(None, use_errno=True)  # loaded here: the child only calls it


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: nothing but the one call."""
    _libc.prctl(_PR_SET_PDEATHSIG, _SIGTERM)


def die_with_parent() -> Any:
    """A ``preexec_fn`` for children of the appliance (its agent, demo localstripe): they
    get SIGTERM when it dies, even by ``kill -9``. None where Linux's prctl is absent."""
    return _die_with_parent if _libc is not None else None
