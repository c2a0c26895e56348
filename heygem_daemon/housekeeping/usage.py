"""When a folder on a share was last used, from what a share lets us see: atime and mtime.

Nothing here opens a file: reading one would itself update its atime.  Directories
count by mtime only (listing them, as we do, updates their atime).  On mounts with
``relatime`` (Linux's default) a read updates atime when the old atime is older than
the mtime or than a day, so the first read of a published job, and at least one a day
after, is seen; on ``noatime`` mounts only writes are.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def last_used(root: Path) -> float:
    """The newest atime or mtime of any file in ``root`` (and mtime of any folder), recursively."""
    newest = 0.0
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        try:
            st = os.lstat(folder)
            newest = max(newest, st.st_mtime)
            with os.scandir(folder) as entries:
                for entry in entries:
                    est = entry.stat(follow_symlinks=False)
                    if stat.S_ISDIR(est.st_mode):
                        stack.append(entry.path)
                    else:
                        newest = max(newest, est.st_mtime, est.st_atime)
        except FileNotFoundError:
            continue  # removed while we looked: not a reason to stop
    return newest


def in_use(root: Path, now: float, busy_seconds: float) -> bool:
    """Whether anything in ``root`` was read or written within ``busy_seconds``."""
    return now - last_used(root) < busy_seconds
