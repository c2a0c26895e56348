"""Outbox retention: old jobs go to ``outbox/.trash/<when>/<job>``, and later away.

Only folders the daemon published are candidates: those holding ``report.json``,
aged by its mtime (written when the job ended).  A job read or written within
``busy_seconds`` is never touched (see usage.py), nor is anything whose name starts
with a dot (``.staging``, ``.trash`` itself, the page's temp files).  Moving is one
rename on the same filesystem, so people with the folder open keep reading it;
``.trash`` is ordinary, so a job can be rescued by moving it back.
"""

from __future__ import annotations

import calendar
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..fsutil import rename_noreplace
from ..logging import get_logger
from ..settings import RetentionSettings
from .usage import in_use

log = get_logger()

DAY_S = 86400.0
TRASH = ".trash"
_STAMP = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class Sweep:
    """What one pass did, for the log and the status page."""

    trashed: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    busy: tuple[str, ...] = ()


class OutboxRetention:
    def __init__(self, outbox: Path, settings: RetentionSettings) -> None:
        self.outbox = outbox
        self.settings = settings
        self.trash = outbox / TRASH

    def sweep(self, now: float) -> Sweep:
        trashed, busy = self._trash_old(now) if self.settings.days > 0 else ((), ())
        deleted, still_busy = self._empty_trash(now)
        return Sweep(trashed, deleted, busy + still_busy)

    # -- outbox → trash -----------------------------------------------------------------------
    def _trash_old(self, now: float) -> tuple[tuple[str, ...], tuple[str, ...]]:
        limit = now - self.settings.days * DAY_S
        moved, busy = [], []
        stamp_dir = self.trash / time.strftime(_STAMP, time.gmtime(now))
        for name in self._job_folders():
            folder = self.outbox / name
            finished = _mtime(folder / "report.json")
            if finished is None or finished > limit:
                continue
            if in_use(folder, now, self.settings.busy_seconds):
                busy.append(name)
                continue
            stamp_dir.mkdir(parents=True, exist_ok=True)
            if rename_noreplace(folder, stamp_dir / name):
                moved.append(name)
                log.info("retention_trashed", outbox=str(self.outbox), job_folder=name,
                         age_days=round((now - finished) / DAY_S, 1))
        return tuple(moved), tuple(busy)

    def _job_folders(self) -> list[str]:
        try:
            with os.scandir(self.outbox) as entries:
                return sorted(e.name for e in entries
                              if not e.name.startswith(".") and e.is_dir(follow_symlinks=False))
        except OSError as exc:
            log.warning("retention_outbox_unreadable", outbox=str(self.outbox), error=str(exc))
            return []

    # -- trash → gone --------------------------------------------------------------------------
    def _empty_trash(self, now: float) -> tuple[tuple[str, ...], tuple[str, ...]]:
        limit = now - self.settings.trash_days * DAY_S
        deleted, busy = [], []
        for stamp_dir in self._stamp_dirs():
            moved_at = _parse_stamp(stamp_dir.name)
            if moved_at is None or moved_at > limit:
                continue
            for job in sorted(p for p in stamp_dir.iterdir() if not p.is_symlink()):
                if in_use(job, now, self.settings.busy_seconds):
                    busy.append(job.name)
                    continue
                shutil.rmtree(job) if job.is_dir() else job.unlink()
                deleted.append(job.name)
                log.info("retention_deleted", outbox=str(self.outbox), job_folder=job.name,
                         trashed_days=round((now - moved_at) / DAY_S, 1))
            try:
                stamp_dir.rmdir()
            except OSError:
                pass  # something is still in it (busy, or put there by people): next time
        return tuple(deleted), tuple(busy)

    def _stamp_dirs(self) -> list[Path]:
        try:
            return sorted(p for p in self.trash.iterdir() if p.is_dir() and not p.is_symlink())
        except FileNotFoundError:
            return []


def _mtime(path: Path) -> float | None:
    try:
        return os.lstat(path).st_mtime
    except OSError:
        return None


def _parse_stamp(name: str) -> float | None:
    """The UTC time a trash folder was made, from its name; None for a folder we did not make."""
    try:
        return float(calendar.timegm(time.strptime(name, _STAMP)))
    except ValueError:
        return None
