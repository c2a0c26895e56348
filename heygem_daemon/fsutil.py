"""File-system primitives: fsync, atomic writes, a rename that never replaces.

Every file the daemon writes for others to read (leases, reports, status page,
queue, caches) goes through ``atomic_file``/``write_atomic``: readers see the old
content or the new, never half.  ``rename_noreplace`` is how results are
published without ever overwriting another host's.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import re
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_RENAME_NOREPLACE = 1


#: write_atomic's temp file beside ``<name>``: ``.<name>.<pid>.<thread>.tmp``
_ATOMIC_TEMP = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.\d+\.tmp")


def atomic_temp(name: str) -> tuple[str, int] | None:
    """(target name, writer pid) when ``name`` is a write_atomic temp file, else None.

    A kill between writing and renaming leaves one behind; whoever knows that its
    writer is gone removes it (the claimed area, a job's staging, the outbox)."""
    match = _ATOMIC_TEMP.fullmatch(name)
    return (match["name"], int(match["pid"])) if match else None


def remove_atomic_temps(folder: Path, *, older_than_s: float = 0.0) -> list[str]:
    """Remove write_atomic temp files in ``folder`` not written to for ``older_than_s``."""
    now = time.time()
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        if atomic_temp(entry.name) is None or not entry.is_file(follow_symlinks=False):
            continue
        try:
            if now - entry.stat(follow_symlinks=False).st_mtime >= older_than_s:
                os.unlink(entry.path)
                removed.append(entry.name)
        except FileNotFoundError:
            continue
    return removed


def atomic_temp_path(path: Path) -> Path:
    """The temp file an atomic write of ``path`` uses: unique to this process and thread."""
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


@contextmanager
def atomic_file(path: Path, *, binary: bool = False) -> Iterator[IO[Any]]:
    """A file that appears at ``path`` whole or not at all.

    Written to ``atomic_temp_path(path)`` beside it, fsynced, then renamed over
    ``path``; an error removes the temp file (a kill leaves it for the sweeps
    that ``atomic_temp`` recognises).
    """
    tmp = atomic_temp_path(path)
    try:
        with open(tmp, "wb") if binary else open(tmp, "w", encoding="utf-8") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, text: str) -> None:
    """Write a small file so readers see the old or the new content, never half."""
    with atomic_file(path) as fh:
        fh.write(text)


def _libc_renameat2() -> Any:
    # Python has no renameat2(); RENAME_NOREPLACE closes the check-then-rename race
    # between hosts publishing the same job name.  Filesystems without it (some
    # NFS/SMB) answer EINVAL and we fall back to the check.
    name = ctypes.util.find_library("c")
    if not name:
        return None
    func = getattr(ctypes.CDLL(name, use_errno=True), "renameat2", None)
    if func is not None:
        func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return func


_renameat2 = _libc_renameat2()


def rename_noreplace(src: Path, dst: Path) -> bool:
    """Rename ``src`` to ``dst`` unless ``dst`` exists; False when it does."""
    if _renameat2 is not None:
        AT_FDCWD = -100
        rc = _renameat2(AT_FDCWD, os.fsencode(src), AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE)
        if rc == 0:
            return True
        err = ctypes.get_errno()
        if err == errno.EEXIST or err == errno.ENOTEMPTY:
            return False
        if err not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(err, os.strerror(err), str(dst))
    if os.path.lexists(dst):
        return False
    os.rename(src, dst)
    return True
