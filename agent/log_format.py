"""Log lines for a terminal, or for the systemd journal when running as a unit.

Under systemd (``JOURNAL_STREAM`` is set and names our stderr) each line starts
with its syslog priority (``<3>`` error, ``<4>`` warning, ``<6>`` info, ...),
which journald reads as the entry's priority (``journalctl -p warning``), and
carries no timestamp of its own: the journal adds one.
"""

from __future__ import annotations

import logging
import os
import sys

PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6}


class JournalFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        priority = next((p for level, p in PRIORITY.items() if record.levelno >= level), 7)
        # One journal entry per record: continuation lines (tracebacks) keep the priority.
        text = super().format(record).replace("\n", f"\n<{priority}>")
        return f"<{priority}>{text}"


def under_journal() -> bool:
    """Whether stderr is connected to the journal (systemd sets JOURNAL_STREAM=dev:inode)."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    try:
        dev, inode = (int(x) for x in stream.split(":"))
        st = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError):
        return False
    return (st.st_dev, st.st_ino) == (dev, inode)


def configure(verbose: bool) -> None:
    level = logging.INFO if verbose else logging.WARNING
    handler = logging.StreamHandler()
    if under_journal():
        handler.setFormatter(JournalFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
