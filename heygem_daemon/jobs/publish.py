"""Staging and publishing: results appear in the outbox whole or not at all.

Everything is written under ``outbox/.staging/<staging id>/`` and fsynced; one
rename then makes ``outbox/<job>/`` appear.  Sources are hard-linked (same
filesystem) or copied into ``source/`` first and leave the inbox only after the
rename, so a crash at any point loses nothing.
"""

from __future__ import annotations

import errno
import grp
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import HeygemError, OutboxUnavailableError, for_admin
from ..fsutil import (  # noqa: F401 -- atomic_temp, remove_atomic_temps, rename_noreplace: re-exported
    atomic_temp,
    fsync_dir,
    fsync_file,
    remove_atomic_temps,
    rename_noreplace,
    write_atomic,
)
from ..logging import get_logger
from ..settings import PublishSettings

log = get_logger()


@dataclass(frozen=True)
class Permissions:
    """The group and mode a team's published files take, so the share's permissions hold."""

    gid: int | None = None
    file_mode: int | None = None

    @classmethod
    def from_settings(cls, publish: PublishSettings) -> "Permissions":
        """Resolve the group name now: an unknown group is a start-up error, not a late surprise."""
        gid = None
        if publish.group is not None:
            try:
                gid = grp.getgrnam(publish.group).gr_gid
            except KeyError:
                raise HeygemError(f"The publish group '{publish.group}' does not exist on this host.",
                                  hint=for_admin("create it, or change publish.group / the team's group")) from None
        return cls(gid, int(publish.mode, 8) if publish.mode is not None else None)

    @property
    def dir_mode(self) -> int | None:
        """Folders: the file mode plus x wherever it gives r (else nobody could open them),
        and setgid when a group is set, so files people add later take the group too."""
        if self.file_mode is None:
            return None  # the umask's, with setgid added when a group is set (see _set)
        mode = self.file_mode | ((self.file_mode & 0o444) >> 2)
        return mode | stat.S_ISGID if self.gid is not None else mode

    def apply(self, root: Path) -> None:
        """Give ``root`` and everything inside it the group and mode; links are left alone."""
        if self.gid is None and self.file_mode is None:
            return
        for folder, dirs, files in os.walk(root):
            self._set(folder, self.dir_mode, folder=True)
            for name in files:
                self._set(os.path.join(folder, name), self.file_mode)
            dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]

    def _set(self, path: str, mode: int | None, *, folder: bool = False) -> None:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            return
        if mode is None and folder and self.gid is not None:
            mode = stat.S_IMODE(st.st_mode) | stat.S_ISGID
        if self.gid is not None and st.st_gid != self.gid:
            os.chown(path, -1, self.gid, follow_symlinks=False)
        if mode is not None:
            # chown may clear setgid on files: set the mode after the group
            os.chmod(path, mode, follow_symlinks=False)


class Staging:
    """One job's half-written results, hidden in ``outbox/.staging``."""

    def __init__(self, outbox: Path, staging_id: str) -> None:
        self.outbox = outbox
        self.path = outbox / ".staging" / staging_id
        self.results = self.path / ".results"

    def create(self) -> None:
        try:
            self.results.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _outbox_error(exc) from exc

    def exists(self) -> bool:
        return self.path.is_dir()

    def file(self, name: str) -> Path:
        return self.path / name

    def partial_path(self, name: str) -> Path:
        """Where an output is written while being made (hidden, still .mp4 for ffmpeg).

        The pid keeps an orphaned ffmpeg of a killed daemon, still finishing its
        file, from writing into the file the restarted daemon writes."""
        return self.path / f".partial-{os.getpid()}-{name}"

    def commit_output(self, name: str) -> Path:
        """Make a finished output durable under its final name in staging."""
        part, final = self.partial_path(name), self.path / name
        fsync_file(part)
        os.replace(part, final)
        fsync_dir(self.path)
        return final

    def drop_partials(self) -> None:
        """Remove what an earlier attempt left half-written: outputs, temp files from a
        kill inside write_atomic (else a report.json temp would be published), and the
        staged sources, whose hard links would make the job's own files look like
        linked escapes when the resumed job is validated (they are staged again at publish)."""
        for entry in self.path.glob(".partial-*"):
            entry.unlink(missing_ok=True)
        for folder in (self.path, self.results):
            remove_atomic_temps(folder)
        shutil.rmtree(self.path / "source", ignore_errors=True)

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def stage_sources(staging: Staging, source_folder: Path) -> list[str]:
    """Link or copy the job's original files into ``source/`` in staging.

    Nothing is followed: sub-folders are copied without following links inside
    them.  Symbolic links, files with other hard links and special files
    (FIFOs, devices) are not copied -- their content may not be the sender's,
    and a link recreated in the outbox could point people on the share at the
    server's own files -- and their names are returned so the log can say so.
    """
    target = staging.path / "source"
    if target.exists():
        shutil.rmtree(target)  # from an interrupted earlier attempt; redo it whole
    target.mkdir()
    skipped = []
    with os.scandir(source_folder) as entries:
        for entry in entries:
            if not _stage_entry(entry, target / entry.name):
                skipped.append(entry.name)
    fsync_dir(target)
    return sorted(skipped)


def _stage_entry(entry: os.DirEntry[str], dst: Path) -> bool:
    st = entry.stat(follow_symlinks=False)
    if stat.S_ISLNK(st.st_mode):
        return False
    if stat.S_ISDIR(st.st_mode):
        shutil.copytree(entry.path, dst, symlinks=True, ignore=_links_and_specials)
    elif not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
        return False
    else:
        try:
            os.link(entry.path, dst, follow_symlinks=False)
        except OSError:
            _copy_no_follow(Path(entry.path), dst)
    return True


def _links_and_specials(folder: str, names: list[str]) -> list[str]:
    """copytree filter: leave out links and non-regular files inside sub-folders too."""
    skipped = []
    for name in names:
        st = os.lstat(os.path.join(folder, name))
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)) or (stat.S_ISREG(st.st_mode) and st.st_nlink > 1):
            skipped.append(name)
    return skipped


def _copy_no_follow(src: Path, dst: Path) -> None:
    fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as fin, open(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout, 4 * 1024 * 1024)
        fout.flush()
        os.fsync(fout.fileno())
    shutil.copystat(src, dst, follow_symlinks=False)


def choose_name(outbox: Path, job: str) -> str:
    """``job``, or ``job-2``, ``job-3``... whichever is free now."""
    candidate, n = job, 1
    while os.path.lexists(outbox / candidate):
        n += 1
        candidate = f"{job}-{n}"
    return candidate


def publish(staging: Staging, job: str, *, before_rename: Callable[[str], None] | None = None,
            permissions: Permissions | None = None) -> Path:
    """Rename the staged folder to ``outbox/<job>`` (or a free suffixed name).

    ``before_rename(name)`` is called with the chosen name right before the
    rename, so the caller can record it for crash recovery.  ``permissions`` are
    applied before the rename, so the job never shows on the share with others'.
    A group the daemon may not give (EPERM) keeps the job waiting, like a full disk.
    """
    try:
        if permissions is not None:
            permissions.apply(staging.path)
        fsync_dir(staging.path)
        while True:
            name = choose_name(staging.outbox, job)
            if before_rename is not None:
                before_rename(name)
            if rename_noreplace(staging.path, staging.outbox / name):
                fsync_dir(staging.outbox)
                log.info("job_published", outbox_name=name)
                return staging.outbox / name
    except OSError as exc:
        raise _outbox_error(exc) from exc


#: errors that mean "the disk is full": the job waits and retries, it is not failed
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def disk_full_error() -> OutboxUnavailableError:
    return OutboxUnavailableError("The outbox disk is full.", hint="Free space; the job waits and retries.")


def _outbox_error(exc: OSError) -> OutboxUnavailableError:
    if exc.errno in DISK_FULL:
        return disk_full_error()
    return OutboxUnavailableError(f"The outbox cannot be written: {exc.strerror or exc}.")
