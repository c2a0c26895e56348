"""Runs retention and the cache cap now and then, on a thread of its own.

A sweep of a large outbox on a network share can take seconds; the main loop pings
systemd's watchdog and starts jobs, so it never waits for one.  ``run_once(now)``
is one pass, callable from tests.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..logging import get_logger
from ..settings import RetentionSettings
from .cache import enforce_cap
from .retention import OutboxRetention

log = get_logger()

Report = Callable[[str, str], None]


@dataclass(frozen=True)
class Area:
    """One outbox, its retention settings, and its status page's notices."""

    outbox: Path
    settings: RetentionSettings
    report: Report


class Housekeeper:
    def __init__(self, areas: list[Area], *, cache_root: Path, cache_max_bytes: int, interval_s: float) -> None:
        self.areas = [(area, OutboxRetention(area.outbox, area.settings)) for area in areas]
        self.cache_root = cache_root
        self.cache_max_bytes = cache_max_bytes
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="housekeeping", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once(time.time())
            self._stop.wait(self.interval_s)

    def run_once(self, now: float) -> None:
        for area, retention in self.areas:
            try:
                self._outbox(area, retention, now)
            except OSError as exc:  # a share gone for a moment: next pass
                log.warning("retention_failed", outbox=str(area.outbox), error=str(exc))
                area.report("retention", f"retention could not finish: {exc}")
        if self.cache_max_bytes > 0:
            try:
                self._cache(now)
            except OSError as exc:
                log.warning("cache_cap_failed", cache=str(self.cache_root), error=str(exc))

    def _outbox(self, area: Area, retention: OutboxRetention, now: float) -> None:
        sweep = retention.sweep(now)
        if sweep.trashed:
            area.report("retention", f"moved {_count(sweep.trashed, 'job')} older than {area.settings.days:g} days "
                                     f"to .trash: {_names(sweep.trashed)}")
        if sweep.deleted:
            area.report("retention", f"deleted {_count(sweep.deleted, 'job')} from .trash after "
                                     f"{area.settings.trash_days:g} days: {_names(sweep.deleted)}")
        if sweep.busy:
            log.info("retention_skipped_busy", outbox=str(area.outbox), job_folders=list(sweep.busy),
                     busy_seconds=area.settings.busy_seconds)

    def _cache(self, now: float) -> None:
        eviction = enforce_cap(self.cache_root, self.cache_max_bytes, now)
        if eviction.files:
            text = (f"cache over its cap of {_mb(self.cache_max_bytes)}: removed {_count(eviction.files, 'file')} "
                    f"used least recently ({_mb(eviction.freed_bytes)}); {_mb(eviction.total_bytes)} left")
            for area, _ in self.areas:
                area.report("cache", text)


def _count(items: tuple[str, ...], noun: str) -> str:
    return f"{len(items)} {noun}{'s' if len(items) != 1 else ''}"


def _names(items: tuple[str, ...], shown: int = 10) -> str:
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"
