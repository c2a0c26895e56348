"""A claimed job: its folder in ``inbox/.heygem/claimed/`` and the lease beside it.

Intake makes claims (``intake/claim.py``: the rename, adopting, sweeping); the
job runner works on one, reading and writing its lease.  ``<claim>.lease`` holds
JSON facts (owner, job priority and arrival, publish progress) and its mtime is
the heartbeat.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..fsutil import write_atomic

#: lease.extra flag: the inbox folder's name was not valid UTF-8
NAME_NOT_UTF8 = "name_not_utf8"


@dataclass
class LeaseData:
    job: str
    host: str
    pid: int
    claimed_at: float
    first_seen: float
    priority: int = 0
    #: names this job's folder in outbox/.staging; kept when another process adopts it
    staging_id: str = ""
    #: set right before the publish rename: the outbox name being published to
    publishing_to: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Claim:
    """A claimed job folder and its lease file."""

    root: Path
    job: str
    host: str
    pid: int

    @property
    def name(self) -> str:
        return f"{self.job}.{self.host}.{self.pid}"

    @property
    def folder(self) -> Path:
        return self.root / self.name

    @property
    def lease_path(self) -> Path:
        return self.root / f"{self.name}.lease"

    @classmethod
    def parse(cls, root: Path, name: str) -> "Claim | None":
        job, sep1, rest = name.rpartition(".")
        job, sep2, host = job.rpartition(".")
        if not (sep1 and sep2 and job and rest.isdigit()):
            return None
        return cls(root, job, host, int(rest))

    def read_lease(self) -> LeaseData | None:
        try:
            data = json.loads(self.lease_path.read_text(encoding="utf-8"))
            return LeaseData(**data)
        except (OSError, ValueError, TypeError):
            return None

    def new_lease(self, *, first_seen: float | None = None, priority: int = 0) -> LeaseData:
        """A lease for this claim with a fresh, unique staging id (not yet written)."""
        now = time.time()
        return LeaseData(self.job, self.host, self.pid, now, first_seen or now, priority,
                         staging_id=f"{self.name}.{int(now * 1000)}")

    def write_lease(self, lease: LeaseData) -> None:
        write_atomic(self.lease_path, json.dumps(asdict(lease)))

    def heartbeat(self) -> None:
        try:
            os.utime(self.lease_path)
        except FileNotFoundError:
            pass

    def lease_age(self, now: float) -> float:
        """Seconds since the last heartbeat (the claim folder's own mtime when the
        owner died between the rename and writing its lease)."""
        for path in (self.lease_path, self.folder):
            try:
                return now - path.stat().st_mtime
            except FileNotFoundError:
                continue
        return float("inf")

    def remove_lease(self) -> None:
        self.lease_path.unlink(missing_ok=True)
