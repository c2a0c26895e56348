"""The live overview for people on the share: ``status.json``, ``status.js`` and ``index.html``.

Rewritten atomically (temp + rename) whenever a job moves, so a browser or a NAS
script never reads half a file.  Finished jobs and notices are kept (newest first,
bounded) in the state folder so the page survives restarts.

status.json is read by NAS scripts: its keys only ever grow.  status.js carries the
page's changing part for the page's own script (a browser refuses ``fetch()`` of a
``file://`` page, but loads a script beside it), index.html the whole page.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from ..fsutil import write_atomic
from ..jobs.report import now_iso
from ..logging import get_logger
from ..settings import StatusSettings
from .page import PageView, page_title, render_main, render_page
from .progress import Estimate
from .published import read_outputs, read_reason
from .times import page_zone, zone_label

log = get_logger()
MAX_RECENT = 100
#: notices (failed notifications, retention moves) kept for the page, newest first
MAX_NOTICES = 50
#: the global status.js sets for the page's script
SCRIPT_GLOBAL = "heygemStatus"
FINISHED_STATES = ("done", "partial", "failed")
#: progress alone rewrites the page at most this often: the runner reports every batch
#: (several times a second), each write is three files (~250 kB with 100 finished jobs)
#: on what is often a share, and an open page looks only every refresh_s anyway
PROGRESS_WRITE_S = 1.0


@dataclass
class JobStatus:
    job: str
    state: str  # waiting | queued | running | done | partial | failed
    detail: str = ""
    since: str = field(default_factory=now_iso)
    outbox_name: str | None = None
    progress: float | None = None
    # -- added for the page (2026-11-29); status.json readers may ignore them --------------
    #: running: estimated seconds left (None until there is enough to go on)
    eta_s: int | None = None
    #: finished: the outputs (video, audio, file, poster, status, error), from report.json
    outputs: list[dict[str, Any]] | None = None
    #: failed or partial: the first lines of ERROR.txt
    reason: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "JobStatus":
        """A row of recent.json, from this version or an older or newer one."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in row.items() if k in known})


class StatusBoard:
    """Holds what the page shows; ``write()`` publishes it."""

    def __init__(self, outbox: Path, state_dir: Path, host: str, *, page: StatusSettings | None = None,
                 title: str | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.outbox = outbox
        self.host = host
        self.page = page or StatusSettings()
        #: the page's heading, e.g. a team's name
        self.title = title or "heygem-daemon"
        self.zone = page_zone(self.page.timezone)
        self._clock = clock
        self._history_path = state_dir / "recent.json"
        self._notices_path = state_dir / "notices.json"
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._estimates: dict[str, Estimate] = {}
        self._progress_written = float("-inf")
        self.waiting: dict[str, str] = {}
        self.queued: list[JobStatus] = []
        self.running: dict[str, JobStatus] = {}
        self.recent: list[JobStatus] = self._load_recent()
        self.notices: list[dict[str, str]] = self._load_notices()
        self.problem: str | None = None

    def _load_recent(self) -> list[JobStatus]:
        try:
            rows = json.loads(self._history_path.read_text(encoding="utf-8"))
            recent = [JobStatus.from_row(row) for row in rows][:MAX_RECENT]
        except (OSError, ValueError, TypeError, AttributeError):
            return []
        for entry in recent:
            if entry.outputs is None and entry.state in FINISHED_STATES:
                self._read_published(entry)  # kept by a version before the page showed results
        return recent

    def _load_notices(self) -> list[dict[str, str]]:
        try:
            rows = json.loads(self._notices_path.read_text(encoding="utf-8"))
            return [{"at": str(r["at"]), "kind": str(r["kind"]), "text": str(r["text"])} for r in rows][:MAX_NOTICES]
        except (OSError, ValueError, TypeError, KeyError):
            return []

    def _read_published(self, entry: JobStatus) -> None:
        if not entry.outbox_name:
            entry.outputs = []
            return
        folder = self.outbox / entry.outbox_name
        entry.outputs = read_outputs(folder)
        if entry.state != "done":
            entry.reason = read_reason(folder)

    # -- updates ------------------------------------------------------------------------
    def set_inbox(self, waiting: dict[str, str], queued: list[JobStatus], problem: str | None) -> None:
        with self._lock:
            self.waiting, self.queued, self.problem = dict(waiting), list(queued), problem

    def running_update(self, job: str, detail: str, progress: float | None = None) -> None:
        now = self._clock()
        with self._lock:
            known = job in self.running
            entry = self.running.setdefault(job, JobStatus(job, "running"))
            entry.detail, entry.progress = detail, progress
            left = self._estimates.setdefault(job, Estimate()).update(progress, now)
            entry.eta_s = None if left is None else int(round(left))
            if known and progress is not None and now - self._progress_written < PROGRESS_WRITE_S:
                return  # the next update or scan writes it
            self._progress_written = now
        self.write()

    def finished(self, job: str, state: str, detail: str, outbox_name: str | None) -> None:
        entry = JobStatus(job, state, detail, outbox_name=outbox_name)
        self._read_published(entry)
        with self._lock:
            self.running.pop(job, None)
            self._estimates.pop(job, None)
            self.recent.insert(0, entry)
            del self.recent[MAX_RECENT:]
            rows = [asdict(r) for r in self.recent]
        self._save(self._history_path, rows)
        self.write()

    def notice(self, kind: str, text: str) -> None:
        """Something people should know that is not a job's state: a notification that
        could not be sent, a job moved to the trash by retention.  Newest first, bounded,
        kept across restarts like the finished jobs."""
        with self._lock:
            self.notices.insert(0, {"at": now_iso(), "kind": kind, "text": text})
            del self.notices[MAX_NOTICES:]
            rows = list(self.notices)
        self._save(self._notices_path, rows)
        self.write()

    def _save(self, path: Path, rows: list[Any]) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, json.dumps(rows))
        except OSError as exc:
            log.warning("status_history_unwritable", error=str(exc))

    def stopped(self, job: str) -> None:
        with self._lock:
            self.running.pop(job, None)
            self._estimates.pop(job, None)

    # -- output --------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "updated_at": now_iso(),
                "host": self.host,
                "problem": self.problem,
                "waiting": [{"job": k, "detail": v} for k, v in sorted(self.waiting.items())],
                "queued": [asdict(j) for j in self.queued],
                "running": [asdict(j) for j in self.running.values()],
                "recent": [asdict(j) for j in self.recent],
                "notices": [dict(n) for n in self.notices],
                "title": self.title,
                "timezone": zone_label(self.zone, datetime.now(timezone.utc)),
            }

    def write(self) -> None:
        with self._write_lock:
            self._write()

    def _write(self) -> None:
        data = self.snapshot()
        view = PageView(zone=self.zone, now=datetime.now(timezone.utc), refresh_s=self.page.refresh_s)
        live = {"updated_at": data["updated_at"], "title": page_title(data), "html": render_main(data, view)}
        try:
            write_atomic(self.outbox / "status.json", _utf8(json.dumps(data, indent=1, ensure_ascii=False)))
            write_atomic(self.outbox / "status.js", _utf8(f"window.{SCRIPT_GLOBAL} = {json.dumps(live)};\n"))
            write_atomic(self.outbox / "index.html", _utf8(render_page(data, view)))
        except OSError as exc:
            log.warning("status_unwritable", error=str(exc))


def _utf8(text: str) -> str:
    """Job folder names that are not valid UTF-8 reach us as surrogate escapes, which
    cannot be written as UTF-8: show those bytes as \\xNN instead of failing (a failing
    status write used to stop the daemon, at every start, for one badly named folder)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
