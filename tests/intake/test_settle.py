"""When a job folder counts as complete (injected clock, no sleeping)."""

from __future__ import annotations

import os
from pathlib import Path

from heygem_daemon.intake.settle import SettleTracker
from heygem_daemon.intake.watcher import InboxWatcher


def _watcher(inbox: Path, settle: float = 10.0, incomplete: float = 900.0) -> InboxWatcher:
    return InboxWatcher(inbox, settle_seconds=settle, incomplete_timeout_s=incomplete,
                        use_inotify=False, max_toml_bytes=65536)


def _ready(watcher: InboxWatcher, now: float) -> list[str]:
    return [j.name for j in watcher.scan(now).ready]


def test_a_folder_copied_slowly_over_a_minute_is_not_taken_until_it_is_quiet(tmp_path):
    """Chunks arriving every 5 s for 60 s keep the job waiting; 10 s of quiet makes it ready."""
    job = tmp_path / "job"
    job.mkdir()
    watcher = _watcher(tmp_path)
    video = job / "talk.mp4"
    for second in range(0, 61, 5):
        with open(video, "ab") as fh:
            fh.write(b"x" * 1000)
        os.utime(video, ns=(second * 10**9, second * 10**9))
        (job / "voice.wav").write_bytes(b"y") if second == 0 else None
        assert _ready(watcher, float(second)) == []
        assert _ready(watcher, second + 4.9) == []
    assert _ready(watcher, 69.0) == []
    assert _ready(watcher, 71.0) == ["job"]


def test_partial_copy_names_keep_a_job_waiting_however_long_it_is_quiet(tmp_path):
    """A .part/.crdownload/~$ file means a copy is still running."""
    for partial in ("talk.mp4.part", "voice.wav.crdownload", "~$notes.docx", "x.tmp"):
        job = tmp_path / partial.replace(".", "_")
        job.mkdir()
        (job / "talk.mp4").write_bytes(b"v")
        (job / partial).write_bytes(b"p")
    watcher = _watcher(tmp_path)
    watcher.scan(0.0)
    result = watcher.scan(10_000.0)
    assert result.ready == []
    assert all("partial copy" in why for why in result.waiting.values())


def test_ready_marker_skips_the_settle_wait(tmp_path):
    """A READY file makes a folder complete at once."""
    job = tmp_path / "job"
    job.mkdir()
    (job / "talk.mp4").write_bytes(b"v")
    (job / "READY").touch()
    assert _ready(_watcher(tmp_path), 0.0) == ["job"]


def test_job_toml_naming_a_file_not_yet_there_waits_then_gives_up(tmp_path):
    """Files named in job.toml are awaited; after the incomplete timeout the job goes to validation."""
    job = tmp_path / "job"
    job.mkdir()
    (job / "job.toml").write_text('audio = "voice.wav"\n')
    (job / "talk.mp4").write_bytes(b"v")
    watcher = _watcher(tmp_path, settle=10, incomplete=100)
    watcher.scan(0.0)
    waiting = watcher.scan(20.0)
    assert waiting.ready == [] and "voice.wav" in waiting.waiting["job"]
    assert _ready(watcher, 101.0) == ["job"]


def test_junk_only_and_hidden_folders_are_not_jobs(tmp_path):
    """.DS_Store alone is an empty job; dot-folders (our own .heygem) are never jobs."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".DS_Store").write_bytes(b"")
    (tmp_path / ".heygem").mkdir()
    watcher = _watcher(tmp_path, settle=0)
    watcher.scan(0.0)
    assert watcher.scan(100.0).ready == []


def test_a_vanished_inbox_is_reported_and_watched_again_without_forgetting_jobs(tmp_path):
    """A missing mount gives a problem line; when it returns, settle state carried on."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "job").mkdir()
    (inbox / "job" / "talk.mp4").write_bytes(b"v")
    watcher = _watcher(inbox, settle=10)
    watcher.scan(0.0)
    os.rename(inbox, tmp_path / "away")
    gone = watcher.scan(5.0)
    assert gone.problem and "not readable" in gone.problem
    os.rename(tmp_path / "away", inbox)
    back = watcher.scan(11.0)
    assert back.problem is None
    assert [j.name for j in back.ready] == ["job"]


def test_settle_tracker_treats_size_or_mtime_change_as_activity(tmp_path):
    """Touching a file restarts the settle clock."""
    job = tmp_path / "job"
    job.mkdir()
    f = job / "a.mp4"
    f.write_bytes(b"1")
    tracker = SettleTracker(settle_seconds=10)
    assert not tracker.observe(job, 0.0).ready
    os.utime(f, ns=(5 * 10**9, 5 * 10**9))
    assert not tracker.observe(job, 9.0).ready
    assert not tracker.observe(job, 18.0).ready
    assert tracker.observe(job, 19.5).ready
