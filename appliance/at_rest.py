"""The data directory at rest: the directory 0700, every file in it 0600, whatever the umask.

The database and its WAL, tokens, bus secrets, localstripe's state, logs and the
local agent's journal all live under the data directory. The appliance process
restricts its umask before it writes anything (children such as localstripe
inherit it) and tightens whatever an older version or another tool left behind.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

UMASK = 0o077
DIR_MODE = 0o700
FILE_MODE = 0o600


def protect(data_dir: Path) -> None:
    """For ``mockmock up`` and ``serve``: restrict this process's umask, then :func:`tighten`."""
    os.umask(UMASK)
    tighten(data_dir)


def tighten(data_dir: Path) -> None:
    """Create ``data_dir`` if needed; set 0700 on it and its folders, 0600 on its files."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    _chmod(data_dir, DIR_MODE)
    for root, dirs, files in os.walk(data_dir):
        for name in dirs:
            _chmod(Path(root, name), DIR_MODE)
        for name in files:
            _chmod(Path(root, name), FILE_MODE)


def _chmod(path: Path, mode: int) -> None:
    # Symbolic links are left alone (their targets are not ours to change); a file
    # that vanished meanwhile (a SQLite -shm, a temp file) needs nothing.
    with contextlib.suppress(FileNotFoundError):
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode) or stat.S_IMODE(st.st_mode) == mode:
            return
        os.chmod(path, mode)
