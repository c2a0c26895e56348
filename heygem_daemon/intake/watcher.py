"""Watching the inbox: inotify as a wake-up hint, a periodic scan as the truth.

inotify never fires for files written by other hosts on NFS/SMB, so the scan
is what finds jobs; the watchdog observer only shortens the wait on local
filesystems.  A vanished or unreadable inbox is reported and watched again when
it returns -- jobs are never treated as deleted because a mount went away.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from ..jobs.scheduler import ReadyJob
from ..logging import get_logger
from .settle import SettleTracker

__all__ = ["InboxWatcher", "ReadyJob", "ScanResult"]

log = get_logger()

class _WakeHandler(FileSystemEventHandler):
    def __init__(self, wake: threading.Event) -> None:
        self._wake = wake

    def on_any_event(self, event: FileSystemEvent) -> None:
        if "/.heygem" not in str(event.src_path):
            self._wake.set()


@dataclass(frozen=True)
class ScanResult:
    ready: list[ReadyJob]
    #: name → what it waits for
    waiting: dict[str, str]
    #: None when the inbox is readable; else why not
    problem: str | None = None


class InboxWatcher:
    """Finds complete job folders. ``scan(now)`` is one iteration, callable from tests."""

    def __init__(
        self,
        inbox: Path,
        *,
        settle_seconds: float,
        incomplete_timeout_s: float,
        use_inotify: bool,
        max_toml_bytes: int,
    ) -> None:
        self.inbox = inbox
        self.wake = threading.Event()
        self._settle = SettleTracker(settle_seconds, max_toml_bytes)
        self._incomplete_timeout = incomplete_timeout_s
        self._use_inotify = use_inotify
        self._observer: Observer | None = None
        self._problem: str | None = None

    # -- observer (hint only) -------------------------------------------------------
    def start(self) -> None:
        if self._use_inotify:
            self._start_observer()

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None

    def _start_observer(self) -> None:
        try:
            observer = Observer()
            observer.schedule(_WakeHandler(self.wake), str(self.inbox), recursive=True)
            observer.start()
        except OSError as exc:
            # inotify limits or a vanished mount: scanning alone still works
            log.warning("inotify_unavailable", inbox=str(self.inbox), error=str(exc))
            return
        self._observer = observer

    def _observer_alive(self) -> bool:
        return self._observer is not None and self._observer.is_alive()

    # -- scan (the truth) -----------------------------------------------------------
    def scan(self, now: float) -> ScanResult:
        try:
            entries = self._job_folders()
        except OSError as exc:
            return self._unavailable(exc)
        if self._problem is not None:
            log.info("inbox_available_again", inbox=str(self.inbox))
            self._problem = None
            if self._use_inotify:
                self.stop()
                self._start_observer()
        elif self._use_inotify and not self._observer_alive():
            self.stop()
            self._start_observer()
        ready, waiting = [], {}
        for name in entries:
            try:
                verdict = self._settle.observe(self.inbox / name, now)
            except OSError:
                continue  # renamed away (claimed by another daemon) or unreadable right now
            first = self._settle.first_seen(name) or now
            if verdict.ready:
                ready.append(ReadyJob(name, first, verdict.reason))
            elif verdict.missing and self._quiet_for(name, now) > self._incomplete_timeout:
                ready.append(ReadyJob(name, first, "gave up waiting for missing files"))
            else:
                waiting[name] = verdict.reason
        for gone in set(self._settle.folders) - set(entries):
            self._settle.forget(gone)
        return ScanResult(ready, waiting)

    def forget(self, name: str) -> None:
        self._settle.forget(name)

    def _quiet_for(self, name: str, now: float) -> float:
        state = self._settle.folders.get(name)
        return now - state.changed_at if state else 0.0

    def _job_folders(self) -> list[str]:
        names = []
        with os.scandir(self.inbox) as it:
            for entry in it:
                if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
                    continue
                names.append(entry.name)
        return sorted(names)

    def _unavailable(self, exc: OSError) -> ScanResult:
        problem = f"inbox {self.inbox} is not readable: {exc.strerror or exc}"
        if problem != self._problem:
            log.error("inbox_unavailable", inbox=str(self.inbox), error=str(exc))
            self._problem = problem
        # keep settle state: the folders are not gone, only out of sight
        return ScanResult([], {}, problem)
