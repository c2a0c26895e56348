"""Intake with the real daemon and real time: slow copies, polling-only mode, READY."""

from __future__ import annotations

import json
from datetime import datetime
import subprocess
import threading
import time
from pathlib import Path

import pytest

from .conftest import drop_job, wait_for

pytestmark = pytest.mark.slow


def _slow_copy(src: Path, dst: Path, seconds: float, chunks: int = 20) -> None:
    data = src.read_bytes()
    step = len(data) // chunks + 1
    with open(dst, "wb") as fh:
        for i in range(0, len(data), step):
            fh.write(data[i : i + step])
            fh.flush()
            time.sleep(seconds / chunks)


def test_a_job_copied_slowly_is_not_taken_before_the_copy_ends(daemon_factory, media_dir):
    """Files written in chunks over 6 s with settle 2 s: claimed only after the last byte."""
    d = daemon_factory({"settle_seconds": 2.0}).start()
    job = d.inbox / "slow"
    job.mkdir()
    finished_at = []

    def copy():
        _slow_copy(media_dir / "audio_2.wav", job / "voice.wav", 2.0)
        _slow_copy(media_dir / "face_5.mp4", job / "talk.mp4", 4.0)
        finished_at.append(time.time())

    copier = threading.Thread(target=copy)
    copier.start()
    copier.join()
    out = d.wait_published("slow")
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "done"
    claimed = next(e for e in d.events() if e.get("event") == "job_claimed")
    claimed_at = datetime.fromisoformat(claimed["timestamp"].replace("Z", "+00:00")).timestamp()
    assert claimed_at >= finished_at[0] + 1.5  # settle 2 s, less the scan interval's granularity


def test_polling_only_mode_finds_jobs_without_inotify(daemon_factory, media_dir):
    """polling = "always" (NFS/SMB shares) still takes jobs."""
    d = daemon_factory({"polling": "always", "settle_seconds": 0.5}).start()
    drop_job(d.inbox, "polled", {"talk.mp4": media_dir / "face_5.mp4", "voice.wav": media_dir / "audio_2.wav"})
    out = d.wait_published("polled")
    assert json.loads((out / "report.json").read_text())["status"] == "done"


def test_ready_marker_takes_the_job_without_waiting_for_settle(daemon_factory, media_dir):
    """With settle 600 s, a READY file still makes the job run now."""
    d = daemon_factory({"settle_seconds": 600.0}).start()
    drop_job(d.inbox, "now", {"talk.mp4": media_dir / "face_5.mp4", "voice.wav": media_dir / "audio_2.wav"},
             ready=True)
    out = d.wait_published("now", timeout=90)
    assert sorted(p.name for p in (out / "source").iterdir()) == ["READY", "talk.mp4", "voice.wav"]


def test_two_videos_run_in_parallel_with_two_workers_and_audio_is_analysed_once(daemon_factory, media_dir):
    """workers = 2: both videos are in flight together; one audio → one prepare."""
    d = daemon_factory({"workers": 2, "settle_seconds": 0.5}).start()
    drop_job(d.inbox, "pair", {"a.mp4": media_dir / "face_2.mp4", "b.mp4": media_dir / "face_3.mp4",
                               "voice.wav": media_dir / "audio_1.wav"})
    out = d.wait_published("pair")
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "done" and len(report["outputs"]) == 2
    events = [e for e in (json.loads(l) for l in (out / "log.jsonl").read_text().splitlines())]
    assert sum(e["event"] == "audio_prepared" for e in events) == 1
    starts = [i for i, e in enumerate(events) if e["event"] == "video_started"]
    first_done = next(i for i, e in enumerate(events) if e["event"] == "video_done")
    assert len(starts) == 2 and starts[1] < first_done


def test_sigterm_stops_the_daemon_and_the_job_resumes_after_restart(daemon_factory, media_dir, tmp_path):
    """First SIGTERM with a short stop timeout checkpoints the job; the next start finishes it."""
    speech = tmp_path / "speech20.wav"  # long enough that the video can't finish in the grace time
    subprocess.run(["ffmpeg", "-v", "error", "-stream_loop", "3", "-i", str(media_dir / "audio_1.wav"),
                    "-t", "20", str(speech)], check=True)
    d = daemon_factory({"stop_timeout_s": 0.5, "settle_seconds": 0.5})
    d.start()
    drop_job(d.inbox, "paused", {"a.mp4": media_dir / "face_1.mp4", "voice.wav": speech})
    wait_for(lambda: any(e.get("event") == "video_started" for e in d.events()), 60, d.log)
    started = time.monotonic()
    assert d.stop(timeout=30) == 0
    assert time.monotonic() - started < 15
    assert not (d.outbox / "paused").exists()
    assert any(e.get("event") == "job_checkpointed" for e in d.events())
    d.start()
    out = d.wait_published("paused")
    assert json.loads((out / "report.json").read_text())["status"] == "done"
