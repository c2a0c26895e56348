"""Outbox retention: jobs older than retention.days go to outbox/.trash/<when>/, and are deleted
trash_days later; what is in use, not ours, or hidden is never touched."""

from __future__ import annotations

import os
import time
from pathlib import Path

from heygem_daemon.housekeeping.keeper import Area, Housekeeper
from heygem_daemon.housekeeping.retention import OutboxRetention
from heygem_daemon.settings import RetentionSettings
from tests.retention.outbox_fixtures import DAY, aged, published_job

SETTINGS = RetentionSettings(days=30, trash_days=7, busy_seconds=600)


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_only_jobs_older_than_the_retention_move_to_the_trash(tmp_path):
    """31 days old: moved to .trash/<UTC time>/; 29 days old: stays; its files unchanged."""
    now = time.time()
    published_job(tmp_path, "old", 31, now=now)
    published_job(tmp_path, "young", 29, now=now)

    sweep = OutboxRetention(tmp_path, SETTINGS).sweep(now)

    assert (("old",), (), ()) == (sweep.trashed, sweep.deleted, sweep.busy)
    assert ["young"] == [n for n in _names(tmp_path) if not n.startswith(".")]
    [stamp] = _names(tmp_path / ".trash")
    assert time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now)) == stamp
    assert ["face_voice.mp4", "report.json", "source"] == _names(tmp_path / ".trash" / stamp / "old")


def test_a_job_read_recently_is_left_alone(tmp_path):
    """An old job whose video was read (atime) five minutes ago is in use: it stays, reported busy."""
    now = time.time()
    folder = published_job(tmp_path, "watched", 60, now=now)
    video = folder / "face_voice.mp4"
    os.utime(video, (now - 300, video.stat().st_mtime))

    sweep = OutboxRetention(tmp_path, SETTINGS).sweep(now)

    assert ((), ("watched",)) == (sweep.trashed, sweep.busy)
    assert folder.is_dir()


def test_a_job_written_into_recently_is_left_alone(tmp_path):
    """Someone adds a note to an old job's source folder (mtime now): the job stays."""
    now = time.time()
    folder = published_job(tmp_path, "annotated", 60, now=now)
    (folder / "source" / "notes.txt").write_text("keep this", encoding="utf-8")

    assert ("annotated",) == OutboxRetention(tmp_path, SETTINGS).sweep(now).busy
    assert folder.is_dir()


def test_folders_that_are_not_published_jobs_and_hidden_ones_are_never_touched(tmp_path):
    """No report.json (someone's own folder), .staging (half-written results) and the page's files
    stay, however old."""
    now = time.time()
    for name in ("shared-notes", ".staging/abc123", ".staging/old-job"):
        (tmp_path / name).mkdir(parents=True)
        (tmp_path / name / "file.bin").write_bytes(b"x")
    (tmp_path / ".staging" / "old-job" / "report.json").write_text("{}", encoding="utf-8")
    (tmp_path / "status.json").write_text("{}", encoding="utf-8")
    for name in ("shared-notes", ".staging", "status.json"):
        aged(tmp_path / name, 400 * DAY, now=now) if (tmp_path / name).is_dir() else \
            os.utime(tmp_path / name, (now - 400 * DAY,) * 2)

    sweep = OutboxRetention(tmp_path, SETTINGS).sweep(now)

    assert ((), ()) == (sweep.trashed, sweep.deleted)
    assert [".staging", "shared-notes", "status.json"] == _names(tmp_path)
    assert ["abc123", "old-job"] == _names(tmp_path / ".staging")


def test_the_trash_is_emptied_after_its_grace_period_only(tmp_path):
    """A trash folder from 8 days ago is deleted (its folder too); one from 6 days ago stays;
    a folder in .trash that we did not name is left alone."""
    now = time.time()
    for days, name in ((8, "expired"), (6, "recent")):
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now - days * DAY))
        published_job(tmp_path / ".trash" / stamp, name, 40, now=now)
    (tmp_path / ".trash" / "rescued by hand").mkdir()

    sweep = OutboxRetention(tmp_path, SETTINGS).sweep(now)

    assert ("expired",) == sweep.deleted
    remaining = sorted(str(p.relative_to(tmp_path / ".trash")) for p in (tmp_path / ".trash").glob("*/*"))
    assert 1 == len(remaining) and remaining[0].endswith("/recent")
    assert (tmp_path / ".trash" / "rescued by hand").is_dir()


def test_retention_days_zero_keeps_jobs_forever_but_still_empties_the_trash(tmp_path):
    """days = 0: a 10-year-old job stays; trash past its grace still goes."""
    now = time.time()
    published_job(tmp_path, "ancient", 3650, now=now)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now - 8 * DAY))
    published_job(tmp_path / ".trash" / stamp, "binned", 40, now=now)

    sweep = OutboxRetention(tmp_path, SETTINGS.model_copy(update={"days": 0})).sweep(now)

    assert ((), ("binned",)) == (sweep.trashed, sweep.deleted)
    assert (tmp_path / "ancient").is_dir()


def test_every_move_and_deletion_is_a_notice_for_the_page(tmp_path):
    """The housekeeper puts one notice per kind of action on the outbox's page."""
    now = time.time()
    published_job(tmp_path, "old", 31, now=now)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now - 8 * DAY))
    published_job(tmp_path / ".trash" / stamp, "binned", 40, now=now)
    notices: list[tuple[str, str]] = []
    keeper = Housekeeper([Area(tmp_path, SETTINGS, lambda kind, text: notices.append((kind, text)))],
                         cache_root=tmp_path / "cache", cache_max_bytes=0, interval_s=60)

    keeper.run_once(now)

    assert [("retention", "moved 1 job older than 30 days to .trash: old"),
            ("retention", "deleted 1 job from .trash after 7 days: binned")] == notices
