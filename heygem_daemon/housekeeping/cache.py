"""A size cap for the caches (face tracks, speech features), least recently used out first.

"Used" is the newer of atime and mtime (see usage.py for what relatime lets us see).
The frame spool is not a cache (running videos own its files; it has its own cap),
and files written in the last minute may still be being written: both are left alone.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from ..fsutil import atomic_temp
from ..logging import get_logger

log = get_logger()

#: sub-folders of the cache that are not caches
NOT_CACHED = frozenset({"spool"})
#: a file modified this recently may be half-written: never evicted
FRESH_S = 60.0


@dataclass(frozen=True)
class CacheFile:
    path: Path
    size: int
    used: float


@dataclass(frozen=True)
class Eviction:
    """What one pass removed, and how much the caches hold after it."""

    files: tuple[str, ...]
    freed_bytes: int
    total_bytes: int


def cache_files(root: Path) -> list[CacheFile]:
    found = []
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    st = entry.stat(follow_symlinks=False)
                    if stat.S_ISDIR(st.st_mode):
                        if not (folder == root and entry.name in NOT_CACHED):
                            stack.append(Path(entry.path))
                    elif stat.S_ISREG(st.st_mode) and atomic_temp(entry.name) is None:
                        found.append(CacheFile(Path(entry.path), st.st_size, max(st.st_atime, st.st_mtime)))
        except FileNotFoundError:
            continue
    return found


def enforce_cap(root: Path, max_bytes: int, now: float) -> Eviction:
    """Remove least recently used files until the caches hold at most ``max_bytes``."""
    files = sorted(cache_files(root), key=lambda f: f.used)
    total = sum(f.size for f in files)
    evicted, freed = [], 0
    for item in files:
        if total <= max_bytes:
            break
        if now - item.used < FRESH_S:
            continue
        try:
            item.path.unlink()
        except FileNotFoundError:
            pass
        total -= item.size
        freed += item.size
        evicted.append(str(item.path.relative_to(root)))
    if evicted:
        log.info("cache_evicted", cache=str(root), files=len(evicted), freed_bytes=freed, total_bytes=total,
                 max_bytes=max_bytes)
    return Eviction(tuple(evicted), freed, total)
