"""Claiming a job by one rename, and the lease that proves its owner lives.

``inbox/<job>`` → ``inbox/.heygem/claimed/<job>.<host>.<pid>``: rename is atomic
on one filesystem (NFS included), so exactly one daemon wins.  Beside each
claimed folder a lease file ``<claim>.lease`` holds JSON facts (owner, job
priority and arrival, publish progress) and its mtime is the heartbeat.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from ..fsutil import atomic_temp
# a claimed job is what the job runner works on, so its type lives in jobs/; re-exported here
from ..jobs.claimed import NAME_NOT_UTF8, Claim, LeaseData  # noqa: F401
from ..logging import get_logger

log = get_logger()


def _pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this host (a reused pid counts as alive:
    its claim then waits for the lease to expire instead of being taken at once)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    except OSError:
        return False
    return True


def readable_job_name(name: str) -> str:
    """The name itself, or with undecodable bytes shown as ``\\xNN`` (valid UTF-8 text)."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def host_name() -> str:
    # dots separate the parts of a claim name, so they are replaced in the host
    return socket.gethostname().replace(".", "-") or "host"


class Claimer:
    """Claims, resumes and reclaims jobs for this host and process."""

    def __init__(self, inbox: Path, *, host: str | None = None, pid: int | None = None) -> None:
        self.inbox = inbox
        self.root = inbox / ".heygem" / "claimed"
        self.host = host or host_name()
        self.pid = pid or os.getpid()

    def ensure_dirs(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def claim(self, job: str, *, priority: int = 0, first_seen: float | None = None) -> Claim | None:
        """Rename ``inbox/<job>`` into the claimed area; None if another daemon won
        or a job of the same name is still claimed here (it waits its turn).

        A folder name that is not valid UTF-8 is claimed under its readable form
        (bad bytes as ``\\xNN``) and marked, so the runner fails it with a clear
        message: such a name cannot be logged, reported or shown as UTF-8 text."""
        raw_job, job = job, readable_job_name(job)
        claim = Claim(self.root, job, self.host, self.pid)
        if os.path.lexists(claim.folder):
            return None
        try:
            # the share may have been remounted (or .heygem deleted) since start-up:
            # without the claim area every rename fails and the job would never run.
            # Not parents=True: a vanished inbox mount point must not be recreated.
            self.root.parent.mkdir(exist_ok=True)
            self.root.mkdir(exist_ok=True)
            os.rename(self.inbox / raw_job, claim.folder)
        except FileNotFoundError:
            return None  # another daemon renamed it first
        except OSError as exc:
            log.warning("claim_failed", job=job, error=str(exc))
            return None
        lease = claim.new_lease(first_seen=first_seen, priority=priority)
        if raw_job != job:
            lease.extra[NAME_NOT_UTF8] = True
        claim.write_lease(lease)
        log.info("job_claimed", job=job, claim=claim.name)
        return claim

    def existing(self) -> list[Claim]:
        try:
            names = [e.name for e in os.scandir(self.root) if e.is_dir(follow_symlinks=False)]
        except FileNotFoundError:
            return []
        return [c for c in (Claim.parse(self.root, n) for n in sorted(names)) if c is not None]

    def adoptable(self, lease_seconds: float, now: float | None = None) -> list[Claim]:
        """Claims this process may take over: this host's from a previous run, and
        any host's whose lease expired."""
        now = time.time() if now is None else now
        # Another daemon on this host may be running right now (several daemons
        # sharing one inbox): only a claim whose process is gone is "ours from a
        # previous run".  A live pid is left to its lease like any other host's.
        mine = [
            c for c in self.existing()
            if c.host == self.host and c.pid != self.pid
            and (not _pid_alive(c.pid) or c.lease_age(now) > lease_seconds)
        ]
        stale = [
            c for c in self.existing()
            if c.host != self.host and c.lease_age(now) > lease_seconds
        ]
        return mine + stale

    def adopt(self, old: Claim) -> Claim | None:
        """Take over an old claim by renaming it to ours (atomic: one winner).

        The lease is written under our name before the folder moves, and the old
        one removed after: a kill between the steps leaves a lease without a
        folder (swept), never our folder without its lease, which would lose the
        staging id (finished videos) and the publish progress."""
        new = Claim(self.root, old.job, self.host, self.pid)
        if os.path.lexists(new.folder):
            return None
        lease = old.read_lease() or new.new_lease()
        lease.host, lease.pid = self.host, self.pid
        new.write_lease(lease)
        try:
            os.rename(old.folder, new.folder)
        except OSError:
            new.remove_lease()
            return None
        old.remove_lease()
        log.info("job_adopted", job=old.job, previous=old.name, claim=new.name)
        return new

    def sweep(self, lease_seconds: float, now: float | None = None) -> list[str]:
        """Remove the files a killed daemon leaves in the claimed area; returns their names.

        Only provable orphans go: a lease whose claim folder is gone (a kill between
        releasing a job's folder and its lease, or inside ``adopt``) and a lease's
        temp file (a kill inside ``write_atomic``), each once its writer is known
        dead: a pid of this host that no longer runs, or no write for
        ``lease_seconds`` (another host's process cannot be asked)."""
        now = time.time() if now is None else now
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return []
        folders = {e.name for e in entries if e.is_dir(follow_symlinks=False)}
        removed = []
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False) and self._orphaned(entry, folders, lease_seconds, now):
                try:
                    os.unlink(entry.path)
                    removed.append(entry.name)
                except FileNotFoundError:
                    pass  # another daemon swept it first
                except OSError as exc:
                    log.warning("claim_litter_unremovable", file=entry.name, error=str(exc))
        if removed:
            log.info("claim_litter_removed", files=[readable_job_name(n) for n in removed])
        return removed

    def _orphaned(self, entry: os.DirEntry, folders: set[str], lease_seconds: float, now: float) -> bool:
        temp = atomic_temp(entry.name)
        if temp is not None and temp[0].endswith(".lease"):
            claim_name, writer = temp[0].removesuffix(".lease"), temp[1]
        elif temp is None and entry.name.endswith(".lease"):
            claim_name = entry.name.removesuffix(".lease")
            if claim_name in folders:
                return False  # the lease of a claimed job
            writer = None
        else:
            return False  # not ours to judge
        claim = Claim.parse(self.root, claim_name)
        if claim is None:
            return False
        writer = claim.pid if writer is None else writer
        if claim.host == self.host and writer != self.pid and not _pid_alive(writer):
            return True
        try:
            return now - entry.stat(follow_symlinks=False).st_mtime > lease_seconds
        except FileNotFoundError:
            return False
