"""The cache cap: past cache_max_bytes the least recently used files go first; the frame spool,
files being written and temp files stay."""

from __future__ import annotations

import os
import time
from pathlib import Path

from heygem_daemon.housekeeping.cache import enforce_cap


def _file(path: Path, size: int, used_s_ago: float, now: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * size)
    os.utime(path, (now - used_s_ago, now - used_s_ago))
    return path


def test_least_recently_used_files_go_until_the_cache_fits(tmp_path):
    """Four 1000-byte files, cap 2500: the two used longest ago are removed, across sub-folders."""
    now = time.time()
    _file(tmp_path / "faces" / "a.npz", 1000, 4000, now)
    _file(tmp_path / "phonemes" / "b.npz", 1000, 3000, now)
    _file(tmp_path / "faces" / "c.npz", 1000, 2000, now)
    _file(tmp_path / "phonemes" / "d.npz", 1000, 1000, now)

    eviction = enforce_cap(tmp_path, 2500, now)

    assert (["faces/a.npz", "phonemes/b.npz"], 2000, 2000) == (sorted(eviction.files), eviction.freed_bytes,
                                                               eviction.total_bytes)
    assert ["c.npz", "d.npz"] == sorted(p.name for p in tmp_path.rglob("*.npz"))


def test_a_recent_read_keeps_an_old_file(tmp_path):
    """Written long ago but read (atime) a minute and a half ago: the other file goes instead."""
    now = time.time()
    old_but_read = _file(tmp_path / "faces" / "read.npz", 1000, 9000, now)
    os.utime(old_but_read, (now - 90, now - 9000))
    _file(tmp_path / "faces" / "unread.npz", 1000, 5000, now)

    assert ("faces/unread.npz",) == enforce_cap(tmp_path, 1500, now).files


def test_the_spool_fresh_files_and_temp_files_are_never_evicted(tmp_path):
    """Cap 0 bytes: only the old, finished cache file goes."""
    now = time.time()
    _file(tmp_path / "spool" / "frames.raw", 5000, 9000, now)
    _file(tmp_path / "faces" / "being-written.npz", 1000, 5, now)
    _file(tmp_path / "faces" / ".x.npz.123.456.tmp", 1000, 9000, now)
    _file(tmp_path / "faces" / "old.npz", 1000, 9000, now)

    assert ("faces/old.npz",) == enforce_cap(tmp_path, 0, now).files
    assert (tmp_path / "spool" / "frames.raw").is_file()
