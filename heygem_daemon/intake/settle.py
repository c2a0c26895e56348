"""Deciding when a job folder is complete (ARCHITECTURE §1).

A folder is complete when nothing in it changed size or mtime for
``settle_seconds``, nothing looks like a partial copy, and the files job.toml
names are there -- or at once when a ``READY`` marker is present.  The clock is
injected so the logic is tested without sleeping.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from ..jobs.folder import is_junk, looks_partial, peek_job_toml

Fingerprint = tuple[tuple[str, int, int], ...]


@dataclass
class FolderState:
    fingerprint: Fingerprint
    changed_at: float
    first_seen: float
    #: what keeps it waiting, for the status page
    waiting_for: str = ""


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str = ""
    #: job.toml names files that are absent (used for the give-up timeout)
    missing: tuple[str, ...] = ()


def fingerprint(folder: Path, *, limit: int = 20_000) -> Fingerprint:
    """(name, size, mtime_ns) of every entry, never following links.

    Bounded by ``limit`` so a 100,000-file folder costs a bounded scan; such a
    folder fails validation later anyway.
    """
    rows: list[tuple[str, int, int]] = []
    with os.scandir(folder) as it:
        for entry in it:
            st = entry.stat(follow_symlinks=False)
            rows.append((entry.name, st.st_size, st.st_mtime_ns))
            if len(rows) >= limit:
                break
    return tuple(sorted(rows))


def named_in_job_toml(folder: Path, max_bytes: int) -> list[str] | None:
    """File names job.toml mentions, or None when it is absent or unreadable
    (validation reports that; completeness only needs the names)."""
    data = peek_job_toml(folder, max_bytes)
    if data is None:
        return None
    names: list[str] = []
    for key in ("audio", "videos"):
        value = data.get(key)
        if isinstance(value, str):
            names.append(value)
        elif isinstance(value, list):
            names.extend(v for v in value if isinstance(v, str))
    return names


@dataclass
class SettleTracker:
    """Remembers each inbox folder's fingerprint and when it last changed."""

    settle_seconds: float
    max_toml_bytes: int = 256 * 1024
    folders: dict[str, FolderState] = field(default_factory=dict)

    def observe(self, folder: Path, now: float) -> Readiness:
        name = folder.name
        fp = fingerprint(folder)
        state = self.folders.get(name)
        if state is None:
            state = self.folders[name] = FolderState(fp, now, now)
        elif state.fingerprint != fp:
            state.fingerprint, state.changed_at = fp, now
        verdict = self._judge(folder, fp, now - state.changed_at)
        state.waiting_for = "" if verdict.ready else verdict.reason
        return verdict

    def forget(self, name: str) -> None:
        self.folders.pop(name, None)

    def first_seen(self, name: str) -> float | None:
        state = self.folders.get(name)
        return state.first_seen if state else None

    def _judge(self, folder: Path, fp: Fingerprint, quiet_for: float) -> Readiness:
        names = [row[0] for row in fp]
        partial = [n for n in names if looks_partial(n)]
        if partial:
            return Readiness(False, f"partial copy in progress ({partial[0]})")
        if not [n for n in names if not is_junk(n)]:
            return Readiness(False, "empty folder")
        if "READY" in names:
            return Readiness(True, "READY marker")
        if quiet_for < self.settle_seconds:
            return Readiness(False, f"settling ({quiet_for:.0f}/{self.settle_seconds:.0f} s unchanged)")
        wanted = named_in_job_toml(folder, self.max_toml_bytes) or []
        # NFC on both sides: a Mac stores 'café.mp4' decomposed (NFD) while job.toml
        # typed on another machine names it composed; validation matches them the same way
        present = {unicodedata.normalize("NFC", n) for n in names}
        missing = tuple(n for n in wanted if unicodedata.normalize("NFC", n) not in present and _plain(n))
        if missing:
            return Readiness(False, f"waiting for {missing[0]} named in job.toml", missing)
        return Readiness(True, f"unchanged for {quiet_for:.0f} s")


def _plain(name: str) -> bool:
    """Only plain names can 'arrive'; '../x' or '/etc/x' are validation errors, not waits."""
    return bool(name) and "/" not in name and "\\" not in name and name not in (".", "..")
