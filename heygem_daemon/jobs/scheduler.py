"""Which complete job runs next: higher priority first, then arrival order.

Jobs stay in the inbox until a worker is free (so several daemons on one share
spread the work); arrival times are persisted in the state folder so the order
survives restarts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..fsutil import write_atomic
from ..logging import get_logger
from .folder import peek_job_toml

log = get_logger()


@dataclass(frozen=True)
class ReadyJob:
    """A job folder intake found complete (the watcher's output, the scheduler's input)."""

    name: str
    first_seen: float
    reason: str


@dataclass(frozen=True)
class QueuedJob:
    name: str
    priority: int
    arrived: float


def read_priority(folder: Path, max_bytes: int) -> int:
    """job.toml's priority, 0 when absent or unreadable (validation reports that later)."""
    value = (peek_job_toml(folder, max_bytes) or {}).get("priority", 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class Scheduler:
    def __init__(self, inbox: Path, state_dir: Path, *, max_toml_bytes: int) -> None:
        self.inbox = inbox
        self._path = state_dir / "queue.json"
        self._max_toml = max_toml_bytes
        self._arrived: dict[str, float] = self._load()
        self._queue: dict[str, QueuedJob] = {}

    def _load(self) -> dict[str, float]:
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
            return {str(k): float(v) for k, v in data.items()}
        except (OSError, ValueError, AttributeError):
            return {}

    def _save(self) -> None:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self._path, json.dumps(self._arrived))
        except OSError as exc:
            log.warning("queue_unwritable", error=str(exc))

    def update(self, ready: list[ReadyJob]) -> None:
        """Replace the queue with the jobs that are ready now."""
        new = [job for job in ready if job.name not in self._arrived]
        for job in new:
            self._arrived[job.name] = job.first_seen
        self._queue = {
            job.name: QueuedJob(job.name, read_priority(self.inbox / job.name, self._max_toml), self._arrived[job.name])
            for job in ready
        }
        if new:
            self._save()

    def ordered(self) -> list[QueuedJob]:
        return sorted(self._queue.values(), key=lambda j: (-j.priority, j.arrived, j.name))

    def arrived(self, name: str) -> float | None:
        return self._arrived.get(name)

    def taken(self, name: str) -> None:
        """The job left the inbox (claimed here or elsewhere)."""
        self._queue.pop(name, None)
        if self._arrived.pop(name, None) is not None:
            self._save()

    def prune(self, present: set[str]) -> None:
        """Forget arrival times of folders no longer in the inbox."""
        gone = [n for n in self._arrived if n not in present]
        for name in gone:
            del self._arrived[name]
        if gone:
            self._save()
