"""The live overview for people on the share: ``outbox/status.json`` and ``index.html``.

Rewritten atomically (temp + rename) whenever a job moves, so a browser or a NAS
script never reads half a file.  Finished jobs are kept (newest first, bounded)
in the state folder so the page survives restarts.
"""

from __future__ import annotations

import html
import json
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .fsutil import write_atomic
from .jobs.report import now_iso
from .logging import get_logger

log = get_logger()
MAX_RECENT = 100
#: notices (failed notifications, retention moves) kept for the page, newest first
MAX_NOTICES = 50


@dataclass
class JobStatus:
    job: str
    state: str  # waiting | queued | running | done | partial | failed
    detail: str = ""
    since: str = field(default_factory=now_iso)
    outbox_name: str | None = None
    progress: float | None = None


class StatusBoard:
    """Holds what the page shows; ``write()`` publishes it."""

    def __init__(self, outbox: Path, state_dir: Path, host: str) -> None:
        self.outbox = outbox
        self.host = host
        self._history_path = state_dir / "recent.json"
        self._notices_path = state_dir / "notices.json"
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self.waiting: dict[str, str] = {}
        self.queued: list[JobStatus] = []
        self.running: dict[str, JobStatus] = {}
        self.recent: list[JobStatus] = self._load_recent()
        self.notices: list[dict[str, str]] = self._load_notices()
        self.problem: str | None = None

    def _load_recent(self) -> list[JobStatus]:
        try:
            rows = json.loads(self._history_path.read_text(encoding="utf-8"))
            return [JobStatus(**row) for row in rows][:MAX_RECENT]
        except (OSError, ValueError, TypeError):
            return []

    def _load_notices(self) -> list[dict[str, str]]:
        try:
            rows = json.loads(self._notices_path.read_text(encoding="utf-8"))
            return [{"at": str(r["at"]), "kind": str(r["kind"]), "text": str(r["text"])} for r in rows][:MAX_NOTICES]
        except (OSError, ValueError, TypeError, KeyError):
            return []

    # -- updates ------------------------------------------------------------------------
    def set_inbox(self, waiting: dict[str, str], queued: list[JobStatus], problem: str | None) -> None:
        with self._lock:
            self.waiting, self.queued, self.problem = dict(waiting), list(queued), problem

    def running_update(self, job: str, detail: str, progress: float | None = None) -> None:
        with self._lock:
            entry = self.running.setdefault(job, JobStatus(job, "running"))
            entry.detail, entry.progress = detail, progress
        self.write()

    def finished(self, job: str, state: str, detail: str, outbox_name: str | None) -> None:
        with self._lock:
            self.running.pop(job, None)
            self.recent.insert(0, JobStatus(job, state, detail, outbox_name=outbox_name))
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

    def _save(self, path: Path, rows: list) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, json.dumps(rows))
        except OSError as exc:
            log.warning("status_history_unwritable", error=str(exc))

    def stopped(self, job: str) -> None:
        with self._lock:
            self.running.pop(job, None)

    # -- output --------------------------------------------------------------------------
    def snapshot(self) -> dict:
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
            }

    def write(self) -> None:
        with self._write_lock:
            self._write()

    def _write(self) -> None:
        data = self.snapshot()
        try:
            write_atomic(self.outbox / "status.json", _utf8(json.dumps(data, indent=1, ensure_ascii=False)))
            write_atomic(self.outbox / "index.html", _utf8(render_html(data)))
        except OSError as exc:
            log.warning("status_unwritable", error=str(exc))


def _utf8(text: str) -> str:
    """Job folder names that are not valid UTF-8 reach us as surrogate escapes, which
    cannot be written as UTF-8: show those bytes as \\xNN instead of failing (a failing
    status write used to stop the daemon, at every start, for one badly named folder)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def render_html(data: dict) -> str:
    """A static page: no scripts, refreshes itself, readable on any share browser."""
    esc = html.escape
    rows = []
    sections = [
        ("Running", data["running"]),
        ("Queued", data["queued"]),
        ("Waiting for files", [{"job": w["job"], "state": "waiting", "detail": w["detail"]} for w in data["waiting"]]),
        ("Finished (newest first)", data["recent"]),
        ("Notices (newest first)", [{"job": n["kind"], "state": n["kind"], "detail": n["text"], "since": n["at"]}
                                    for n in data.get("notices", [])]),
    ]
    for title, items in sections:
        rows.append(f"<h2>{esc(title)} ({len(items)})</h2>")
        if not items:
            rows.append("<p class=none>none</p>")
            continue
        rows.append("<table><tr><th>job</th><th>state</th><th>detail</th><th>since</th></tr>")
        for item in items:
            state = item.get("state", "")
            rows.append(
                f"<tr class='{esc(state)}'><td>{esc(item['job'])}</td><td>{esc(state)}</td>"
                f"<td>{esc(item.get('detail', ''))}</td><td>{esc(item.get('since', ''))}</td></tr>"
            )
        rows.append("</table>")
    problem = f"<p class=problem>{esc(data['problem'])}</p>" if data.get("problem") else ""
    return (
        "<!doctype html><html><head><meta charset=utf-8><meta http-equiv=refresh content=10>"
        "<title>heygem-daemon status</title><style>body{font-family:sans-serif;margin:2em}"
        "table{border-collapse:collapse}td,th{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}"
        ".failed td{color:#a00}.partial td{color:#a60}.done td{color:#060}.problem{color:#a00;font-weight:bold}"
        "</style></head><body><h1>heygem-daemon</h1>"
        f"<p>Host {esc(data['host'])}, updated {esc(data['updated_at'])}.</p>{problem}"
        + "".join(rows)
        + "</body></html>\n"
    )
