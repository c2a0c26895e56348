"""Slow and partial copies are never taken before they are complete.

Long copies (30+ s) run against ``InboxWatcher.scan(now)`` with an injected
clock, so they cost milliseconds; the files are real and really written, only
the time between chunks is simulated.  The short real-time tests run the whole
daemon and prove a job taken early would fail (a half file is corrupt media).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from heygem_daemon.intake.watcher import InboxWatcher

from .conftest import read_report, tiny_job

SETTLE = 10.0


def _watcher(inbox: Path, settle: float = SETTLE) -> InboxWatcher:
    return InboxWatcher(inbox, settle_seconds=settle, incomplete_timeout_s=900.0, use_inotify=False,
                        max_toml_bytes=256 * 1024)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def _ready(watcher: InboxWatcher, now: float) -> list[str]:
    return [j.name for j in watcher.scan(now).ready]


def _chunks(data: bytes, n: int) -> list[bytes]:
    step = len(data) // n + 1
    return [data[i : i + step] for i in range(0, len(data), step)]


def _set_mtime(path: Path, clock: FakeClock) -> None:
    # a remote writer's mtimes follow its own clock; keep them in step with the fake one
    os.utime(path, ns=(int(clock.now * 1e9), int(clock.now * 1e9)))


def test_chunks_written_over_40_seconds_are_taken_only_after_the_last_one(tmp_path, tiny_media):
    """20 chunks 2 s apart (settle 10 s): never ready while writing; ready 10 s after the last chunk."""
    inbox, clock = tmp_path, FakeClock()
    job = inbox / "slow"
    job.mkdir()
    (job / "voice.wav").write_bytes(tiny_media["voice"].read_bytes())
    w = _watcher(inbox)
    with open(job / "talk.mp4", "wb") as fh:
        for chunk in _chunks(tiny_media["face"].read_bytes(), 20):
            fh.write(chunk)
            fh.flush()
            _set_mtime(job / "talk.mp4", clock)
            assert _ready(w, clock.advance(2.0)) == []
    assert _ready(w, clock.advance(SETTLE - 1)) == []
    assert _ready(w, clock.advance(1.5)) == ["slow"]


def test_job_toml_first_waits_for_every_file_it_names_even_after_long_pauses(tmp_path, tiny_media):
    """job.toml arrives first, the files it names 60 s later: quiet pauses longer than settle don't make it ready."""
    inbox, clock = tmp_path, FakeClock()
    job = inbox / "toml-first"
    job.mkdir()
    (job / "job.toml").write_text('audio = "voice.wav"\nvideos = ["a.mp4", "b.mp4"]\n')
    w = _watcher(inbox)
    assert _ready(w, clock.now) == []
    result = w.scan(clock.advance(60))
    assert result.ready == [] and "voice.wav" in result.waiting["toml-first"]
    (job / "voice.wav").write_bytes(tiny_media["voice"].read_bytes())
    (job / "a.mp4").write_bytes(tiny_media["face"].read_bytes())
    assert _ready(w, clock.advance(1)) == []
    assert "b.mp4" in w.scan(clock.advance(60)).waiting["toml-first"]
    (job / "b.mp4").write_bytes(tiny_media["face"].read_bytes())
    assert _ready(w, clock.advance(1)) == []
    assert _ready(w, clock.advance(SETTLE + 1)) == ["toml-first"]


def test_job_toml_last_restarts_the_settle_wait(tmp_path, tiny_media):
    """Media first, job.toml a few seconds later (within settle): the job waits until job.toml has settled too."""
    inbox, clock = tmp_path, FakeClock()
    job = inbox / "toml-last"
    job.mkdir()
    for name, src in tiny_job(tiny_media).items():
        (job / name).write_bytes(src.read_bytes())
    w = _watcher(inbox)
    assert _ready(w, clock.now) == []
    assert _ready(w, clock.advance(SETTLE - 2)) == []
    (job / "job.toml").write_text('priority = 3\n')
    assert _ready(w, clock.advance(3)) == []  # 11 s since the media, 3 s since job.toml
    assert _ready(w, clock.advance(SETTLE)) == ["toml-last"]


def test_a_copy_that_stops_half_way_for_an_hour_is_not_taken_while_it_has_a_partial_name(tmp_path, tiny_media):
    """Copy tools writing 'x.mp4.part' then renaming: an hour's pause at half way never makes the job ready."""
    inbox, clock = tmp_path, FakeClock()
    job = inbox / "paused"
    job.mkdir()
    (job / "voice.wav").write_bytes(tiny_media["voice"].read_bytes())
    data = tiny_media["face"].read_bytes()
    part = job / "talk.mp4.part"
    part.write_bytes(data[: len(data) // 2])
    w = _watcher(inbox)
    for _ in range(12):
        result = w.scan(clock.advance(300))
        assert result.ready == [] and "partial copy" in result.waiting["paused"]
    with open(part, "ab") as fh:
        fh.write(data[len(data) // 2 :])
    part.rename(job / "talk.mp4")
    assert _ready(w, clock.advance(1)) == []
    assert _ready(w, clock.advance(SETTLE + 1)) == ["paused"]


def test_a_copy_paused_shorter_than_settle_then_resumed_is_not_taken_early(tmp_path, tiny_media):
    """Half written, 8 s pause (< settle), rest written: ready only a full settle after the rest is seen."""
    inbox, clock = tmp_path, FakeClock()
    job = inbox / "resumed"
    job.mkdir()
    (job / "voice.wav").write_bytes(tiny_media["voice"].read_bytes())
    data = tiny_media["face"].read_bytes()
    target = job / "talk.mp4"
    target.write_bytes(data[: len(data) // 2])
    _set_mtime(target, clock)
    w = _watcher(inbox)
    assert _ready(w, clock.now) == []
    assert _ready(w, clock.advance(8)) == []
    with open(target, "ab") as fh:
        fh.write(data[len(data) // 2 :])
    _set_mtime(target, clock)
    assert _ready(w, clock.advance(1)) == []  # the change is seen here: settle starts again
    assert _ready(w, clock.advance(SETTLE - 1)) == []
    assert _ready(w, clock.advance(2)) == ["resumed"]


def test_smb_preallocated_file_filled_later_is_judged_by_mtime_not_size(tmp_path, tiny_media):
    """Full size of zeros at once, then filled over 40 s (size never changes, mtime does): not ready until filled."""
    inbox, clock = tmp_path, FakeClock()
    job = inbox / "smb"
    job.mkdir()
    (job / "voice.wav").write_bytes(tiny_media["voice"].read_bytes())
    data = tiny_media["face"].read_bytes()
    target = job / "talk.mp4"
    with open(target, "wb") as fh:
        fh.truncate(len(data))
    _set_mtime(target, clock)
    w = _watcher(inbox)
    offset = 0
    with open(target, "r+b") as fh:
        for chunk in _chunks(data, 10):
            assert _ready(w, clock.advance(4)) == []
            fh.seek(offset)
            fh.write(chunk)
            fh.flush()
            offset += len(chunk)
            _set_mtime(target, clock)
            assert target.stat().st_size == len(data)
    assert _ready(w, clock.advance(1)) == []  # last chunk seen
    assert _ready(w, clock.advance(SETTLE - 1)) == []
    assert _ready(w, clock.advance(2)) == ["smb"]


def test_ready_marker_skips_settle_but_not_a_partial_copy(tmp_path, tiny_media):
    """READY makes a job ready at once, unless a partial-copy name is still present."""
    inbox, clock = tmp_path, FakeClock()
    job = inbox / "marked"
    job.mkdir()
    for name, src in tiny_job(tiny_media).items():
        (job / name).write_bytes(src.read_bytes())
    (job / "extra.mp4.crdownload").write_bytes(b"half")
    (job / "READY").touch()
    w = _watcher(inbox, settle=600)
    assert _ready(w, clock.now) == []
    (job / "extra.mp4.crdownload").unlink()
    assert _ready(w, clock.advance(0.1)) == ["marked"]


# -- real time, real daemon --------------------------------------------------------


@pytest.mark.slow
def test_preallocated_video_filled_slowly_is_processed_only_once_complete(daemon_factory, tiny_media):
    """Real daemon, settle 1.5 s: a zero-filled video filled over ~4 s is claimed after the fill and renders fine."""
    d = daemon_factory({"settle_seconds": 1.5, "poll_interval": 0.2}).start()
    build = d.inbox.parent / "build-smb"
    build.mkdir()
    (build / "voice.wav").write_bytes(tiny_media["voice"].read_bytes())
    data = tiny_media["face"].read_bytes()
    with open(build / "talk.mp4", "wb") as fh:
        fh.truncate(len(data))
    os.rename(build, d.inbox / "smb")
    finished = []

    def fill() -> None:
        with open(d.inbox / "smb" / "talk.mp4", "r+b") as fh:
            for i, chunk in enumerate(_chunks(data, 8)):
                time.sleep(0.5)
                fh.seek(sum(len(c) for c in _chunks(data, 8)[:i]))
                fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
        finished.append(time.time())

    filler = threading.Thread(target=fill)
    filler.start()
    filler.join()
    out = d.wait_published("smb", timeout=60)
    assert read_report(out)["status"] == "done"
    claimed = next(e for e in d.events() if e.get("event") == "job_claimed")
    assert _epoch(claimed["timestamp"]) >= finished[0] + 1.0


@pytest.mark.slow
def test_job_toml_arriving_last_is_used_by_the_real_daemon(daemon_factory, tiny_media):
    """Media copied, then job.toml 0.7 s later (settle 1.5 s): the job runs with job.toml's output_name."""
    d = daemon_factory({"settle_seconds": 1.5, "poll_interval": 0.2}).start()
    job = d.inbox / "late-toml"
    job.mkdir()
    for name, src in tiny_job(tiny_media).items():
        (job / name).write_bytes(src.read_bytes())
    time.sleep(0.7)
    (job / "job.toml").write_text('output_name = "final-{index}.mp4"\n')
    out = d.wait_published("late-toml", timeout=60)
    report = read_report(out)
    assert report["status"] == "done" and report["outputs"][0]["file"] == "final-1.mp4"


def _epoch(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
