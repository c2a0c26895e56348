"""What a notification says: one published job, read back from its outbox folder."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: lines of ERROR.txt a notification carries: the reason, not the whole story
ERROR_LINES = 6


@dataclass(frozen=True)
class JobEvent:
    """A job that was published: finished (done or partial) or failed."""

    job: str
    status: str  # done | partial | failed
    team: str
    host: str
    outbox: Path
    folder: str
    finished_at: str
    outputs: tuple[str, ...]
    errors: tuple[str, ...]

    @property
    def kind(self) -> str:
        """``job.finished`` (done or partial) or ``job.failed``: the webhook's event name."""
        return "job.failed" if self.status == "failed" else "job.finished"

    def payload(self, delivery_id: str) -> dict[str, Any]:
        """The webhook's JSON body (documented in docs/notifications.md)."""
        return {
            "event": self.kind,
            "delivery_id": delivery_id,
            "job": self.job,
            "status": self.status,
            "team": self.team,
            "host": self.host,
            "outbox_folder": self.folder,
            "finished_at": self.finished_at,
            "outputs": list(self.outputs),
            "errors": list(self.errors),
        }


def read_event(folder: Path, *, team: str, host: str, status: str) -> JobEvent:
    """The event for the job published at ``folder`` (report.json, ERROR.txt's first lines).

    ``status`` is the runner's outcome; report.json only adds names, so an unreadable
    one still gives an event (without output names)."""
    try:
        report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        report = {}
    outputs = tuple(o["file"] for o in report.get("outputs", []) if isinstance(o, dict) and o.get("file"))
    return JobEvent(
        job=str(report.get("job") or folder.name), status=status, team=team, host=host,
        outbox=folder.parent, folder=folder.name, finished_at=str(report.get("finished_at", "")),
        outputs=outputs, errors=_error_lines(folder / "ERROR.txt"),
    )


def _error_lines(path: Path) -> tuple[str, ...]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ()
    return tuple(line for line in text.splitlines() if line.strip())[:ERROR_LINES]


def event_fields(event: JobEvent) -> dict[str, Any]:
    """The event as plain JSON values, for the notification spool."""
    fields = asdict(event)
    fields.update(outbox=str(event.outbox), outputs=list(event.outputs), errors=list(event.errors))
    return fields


def event_from_fields(fields: dict[str, Any]) -> JobEvent:
    """The event back from ``event_fields``."""
    return JobEvent(**{**fields, "outbox": Path(fields["outbox"]), "outputs": tuple(fields["outputs"]),
                       "errors": tuple(fields["errors"])})
