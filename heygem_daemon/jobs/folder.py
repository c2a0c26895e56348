"""Safe listing of an untrusted job folder.

Only regular files directly inside the job folder count.  Everything is looked
at with ``lstat`` through a directory descriptor opened with ``O_NOFOLLOW``, so
listing a folder never reads, opens or follows anything outside it.
"""

from __future__ import annotations

import errno
import os
import stat
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import HeygemError, JobValidationError, LimitExceededError, UnsafeInputError, for_admin, raise_setting

AUDIO_EXTS = frozenset({".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".opus"})
VIDEO_EXTS = frozenset({".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v"})
#: compared case-folded; every dotfile (``._*``, ``.DS_Store``, ``.nfs*``) is junk too
JUNK_NAMES = frozenset({"thumbs.db", "desktop.ini"})
#: names copy tools give a file while it is still being written (browsers,
#: WinSCP, Nextcloud/Resilio sync clients, our own docs' advice)
PARTIAL_SUFFIXES = (".part", ".tmp", ".crdownload", ".partial", ".filepart", ".!sync", ".download")
PARTIAL_PREFIX = "~$"
JOB_TOML = "job.toml"
READY = "READY"

Kind = Literal["audio", "video", "toml", "ready", "junk", "partial", "other"]


@dataclass(frozen=True)
class Entry:
    """One directory entry of a job folder, as ``lstat`` saw it."""

    name: str
    size: int
    mtime_ns: int
    kind: Kind


def is_junk(name: str) -> bool:
    """Dotfiles and OS litter: never read, never a reason to run a job."""
    return name.startswith(".") or name.casefold() in JUNK_NAMES


def looks_partial(name: str) -> bool:
    """A copy still in progress -- hidden or not (``.x.mp4.part`` counts too)."""
    return name.casefold().endswith(PARTIAL_SUFFIXES) or name.startswith(PARTIAL_PREFIX)


def classify(name: str) -> Kind:
    """The kind of a file, from its name alone."""
    folded = name.casefold()
    if is_junk(name):
        return "junk"
    if name == JOB_TOML:
        return "toml"
    if name == READY:
        return "ready"
    if looks_partial(name):
        return "partial"
    ext = os.path.splitext(folded)[1]
    if ext in AUDIO_EXTS:
        return "audio"
    if ext in VIDEO_EXTS:
        return "video"
    return "other"


def scan_folder(folder: Path, *, max_files: int) -> list[Entry]:
    """List the job folder, sorted by name; refuse anything that is not a plain file.

    Junk entries (dotfiles, Thumbs.db...) are listed with kind "junk" whatever
    they are, since they are never read.  Raises UnsafeInputError for links,
    pipes, devices, sockets and sub-folders, LimitExceededError past
    ``max_files`` entries (counted while reading, so a huge folder is never
    listed in full).
    """
    dir_fd = _open_folder(folder)
    entries: list[Entry] = []
    try:
        with os.scandir(dir_fd) as listing:
            for item in listing:
                if len(entries) >= max_files:
                    raise LimitExceededError(
                        f"The job folder '{folder.name}' holds more than {max_files} files.",
                        key="limits.max_files_per_job",
                        hint=f"Split it into several jobs. {raise_setting('limits.max_files_per_job')}",
                    )
                entry = _entry(item)
                if entry is not None:
                    entries.append(entry)
    finally:
        os.close(dir_fd)
    return sorted(entries, key=lambda e: e.name)


def open_regular(path: Path) -> int:
    """Open a file of the job folder for reading; the caller closes the descriptor.

    O_NOFOLLOW refuses a symlink swapped in after the scan, O_NONBLOCK makes a
    swapped-in FIFO return at once instead of blocking, and fstat checks what
    was really opened.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeInputError(_SYMLINK.format(name=path.name)) from exc
        raise
    try:
        _require_plain_file(path.name, os.fstat(fd))
    except BaseException:
        os.close(fd)
        raise
    return fd


def peek_job_toml(folder: Path, max_bytes: int) -> dict[str, Any] | None:
    """job.toml read leniently for intake (the names it waits for, the priority).

    None when absent, too big, not a plain file or not valid TOML: validation
    reports those with a proper message once the job is claimed."""
    try:
        fd = open_regular(folder / JOB_TOML)
    except (OSError, HeygemError):
        return None
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        return None
    try:
        parsed = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return None
    return parsed


def content_fingerprint(entries: Iterable[Entry]) -> tuple[tuple[str, int, int], ...]:
    """(name, size, mtime) of every entry: equal fingerprints mean nothing changed.

    Junk is included on purpose: rsync and some copy tools write into a hidden
    temporary file and rename it at the end, and that file growing means the
    job is still arriving.
    """
    return tuple(sorted((e.name, e.size, e.mtime_ns) for e in entries))


def partial_names(entries: Iterable[Entry]) -> list[str]:
    """Names that look like copies still in progress (a job holding one is not complete)."""
    return sorted(e.name for e in entries if e.kind == "partial")


def readable_name(name: str) -> str:
    """A file name fit for a message, even when its bytes are not valid UTF-8."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


# -- internals ---------------------------------------------------------------------

_SYMLINK = "'{name}' is a symbolic link; copy the real file into the job folder instead."


def _open_folder(folder: Path) -> int:
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(folder, flags)
    except FileNotFoundError as exc:
        raise JobValidationError(f"The job folder '{folder.name}' does not exist (was it moved?).") from exc
    except PermissionError as exc:
        raise JobValidationError(
            f"The daemon may not read the job folder '{folder.name}'.",
            hint=f"Check the folder's permissions. {for_admin('give the heygem user read access to it')}",
        ) from exc
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafeInputError(
                f"The job '{folder.name}' is not a real folder (it is a symbolic link or a file).",
                hint="Put a real folder holding the files into the inbox.",
            ) from exc
        raise


def _entry(item: os.DirEntry[str]) -> Entry | None:
    name = _checked_name(item.name)
    try:
        st = item.stat(follow_symlinks=False)
    except FileNotFoundError:
        return None  # removed while we listed; the settle logic sees the change
    kind = classify(name)
    if kind != "junk":
        _require_plain_file(name, st)
    return Entry(name=name, size=st.st_size, mtime_ns=st.st_mtime_ns, kind=kind)


def _checked_name(name: str) -> str:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafeInputError(
            f"The file name '{readable_name(name)}' in the job folder is not valid UTF-8 text.",
            hint="Rename the file (the unreadable part is shown as \\x..), then put the job back.",
        ) from None
    return name


def _require_plain_file(name: str, st: os.stat_result) -> None:
    mode = st.st_mode
    if stat.S_ISREG(mode):
        if st.st_nlink > 1:
            raise UnsafeInputError(
                f"'{name}' is a hard link shared with another file; "
                "copy the file into the job folder instead of linking it."
            )
        return
    raise UnsafeInputError(_not_regular(name, mode))


def _not_regular(name: str, mode: int) -> str:
    if stat.S_ISLNK(mode):
        return _SYMLINK.format(name=name)
    if stat.S_ISDIR(mode):
        return f"'{name}' is a sub-folder; put all files directly into the job folder, without sub-folders."
    if stat.S_ISFIFO(mode):
        what = "a named pipe (FIFO)"
    elif stat.S_ISSOCK(mode):
        what = "a socket"
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        what = "a device"
    else:
        what = "a special file"
    return f"'{name}' is {what}, not a plain file; copy the real file into the job folder instead."
