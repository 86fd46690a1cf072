"""Process limits a board running thousands of mock devices needs."""

from __future__ import annotations

import os
import resource

from agent.errors import AgentError

FD_RESERVE = 64  # logs, the journal, the control connection, verify subscribers


def raise_open_files_limit() -> int:
    """Every per-device connection is a file descriptor: lift the soft limit (often
    1,024) to the hard one, as a board running 10,000 devices needs."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 16)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft
        return target
    return soft


def open_files() -> tuple[int, int]:
    """(descriptors open now, the soft limit) of this process."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        used = len(os.listdir("/proc/self/fd"))
    except OSError:
        used = 0
    return used, soft if soft != resource.RLIM_INFINITY else 1 << 30


def check_open_files(connections: int, what: str) -> None:
    """One clear line instead of a connect phase that retries forever: ``connections``
    more sockets must fit under the open-files limit (with a little room to spare)."""
    used, soft = open_files()
    if used + connections + FD_RESERVE > soft:
        raise AgentError(
            f"{what}: {connections} connections need {connections + FD_RESERVE} free file "
            f"descriptors but only {max(0, soft - used)} of {soft} are left (ulimit -n; "
            "raise the hard limit, e.g. LimitNOFILE= in the systemd unit)"
        )
