"""Process limits a board running thousands of mock devices needs."""

from __future__ import annotations

import resource


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
