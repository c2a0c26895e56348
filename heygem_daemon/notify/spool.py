"""The notification spool: every delivery is on disk before its job is published.

One JSON file a delivery, named by its delivery id, under ``<state_dir>/notify``.
The job thread writes it (fsynced, with the folder) right before the publish
rename; the dispatcher removes it once the receiver took it or the delivery was
given up after its last try.  A daemon killed in between finds it at the next
start and sends it then, with the same id: receivers drop the duplicate by
``X-Heygem-Delivery`` (at least once, as Stripe and GitHub deliver).

The file names the job's staging folder: while that folder exists the rename
has not happened, so the delivery is held back (the resumed job writes it
again and sends it when it is published).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from ..fsutil import fsync_dir, remove_atomic_temps, write_atomic
from ..logging import get_logger

log = get_logger()

#: a fixed namespace, so one job's delivery id is the same whichever process computes it
_NAMESPACE = uuid.UUID("5c1b8d3e-7a43-4f0e-9a51-2f1f3c6d8e10")


def delivery_id(staging_id: str, channel: str) -> str:
    """The id a job's delivery on ``channel`` keeps for ever: from the job's staging id, which a
    resumed job keeps, so a job re-published after a crash is the same delivery, not a new one."""
    return str(uuid.uuid5(_NAMESPACE, f"{staging_id}/{channel}"))


class SpoolRecord(BaseModel):
    """One pending delivery as it lies on disk (the file is a boundary: validated when read)."""

    model_config = {"extra": "forbid"}

    version: Literal[1] = 1
    id: str
    channel: Literal["webhook", "email"]
    #: the team whose settings send it ("" without [[teams]])
    team: str
    #: the JobEvent's fields (notify.event.event_fields)
    event: dict[str, Any]
    #: mail only: job.toml's allowed addresses, read when the job was launched
    job_recipients: list[str] = []
    #: the job's staging folder; the delivery waits while it exists (not yet published)
    staging: str
    created_at: float
    tries: int = 0
    last_error: str = ""

    def published(self) -> bool:
        return not os.path.isdir(self.staging)


class Spool:
    """The folder of pending deliveries; safe to use from several threads (one file each)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        remove_atomic_temps(self.folder)  # a kill inside write_atomic: the old file (if any) is whole

    def write(self, record: SpoolRecord) -> None:
        """Durable when it returns: the file and the folder entry are fsynced."""
        # the json module, not pydantic's: a job name that is not valid UTF-8 holds lone
        # surrogates, which it writes as \udcxx escapes and reads back unchanged
        write_atomic(self._path(record.id), json.dumps(record.model_dump(), ensure_ascii=True))
        fsync_dir(self.folder)

    def remove(self, record_id: str) -> None:
        try:
            self._path(record_id).unlink()
        except FileNotFoundError:
            return
        fsync_dir(self.folder)

    def records(self) -> list[SpoolRecord]:
        """Every pending delivery, oldest first; a file that cannot be read is set aside (logged)."""
        found = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                found.append(SpoolRecord.model_validate(json.loads(path.read_bytes())))
            except FileNotFoundError:
                continue  # delivered meanwhile
            except (OSError, ValueError, ValidationError) as exc:
                self._set_aside(path, str(exc))
        return sorted(found, key=lambda r: (r.created_at, r.id))

    def _set_aside(self, path: Path, error: str) -> None:
        """Keep a broken file for the admin to read, out of the way of the next look."""
        aside = path.with_name(f"{path.name}.unreadable-{int(time.time())}")
        log.error("notify_spool_unreadable", file=path.name, moved_to=aside.name, error=error[:300])
        try:
            path.replace(aside)
        except OSError as exc:
            log.error("notify_spool_unmovable", file=path.name, error=str(exc))

    def _path(self, record_id: str) -> Path:
        return self.folder / f"{record_id}.json"
