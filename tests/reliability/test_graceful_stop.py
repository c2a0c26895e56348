"""Graceful stop: SIGTERM finishes or checkpoints the current job in time; a second SIGTERM forces."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.media import sample_media

from .conftest import drop_job, read_report, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def long_voice(tmp_path_factory) -> Path:
    """20 s of real speech (audio_2 looped): the video is extended to it, so the render
    lasts several seconds even on a fast machine -- long enough to be mid-video when signalled."""
    out = tmp_path_factory.mktemp("long_voice") / "voice.wav"
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-stream_loop", "3", "-i",
                    str(sample_media("audio_2.wav")), "-t", "20", str(out)], check=True, timeout=60)
    return out


def _long_job(media_dir: Path, voice: Path) -> dict:
    return {"talk.mp4": media_dir / "face_5.mp4", "voice.wav": voice}


def _signal_when_rendering(d) -> float:
    wait_for(lambda: any(e.get("event") == "video_started" for e in d.events()), 60, d.log)
    d.proc.send_signal(signal.SIGTERM)
    return time.monotonic()


def test_sigterm_with_time_to_spare_finishes_and_publishes_the_current_job(daemon_factory, media_dir, long_voice):
    """stop_timeout_s long enough: the running job completes and is published, then the daemon exits 0."""
    d = daemon_factory({"stop_timeout_s": 60.0, "settle_seconds": 0.3}).start()
    drop_job(d.inbox, "finish-me", _long_job(media_dir, long_voice))
    _signal_when_rendering(d)
    assert d.proc.wait(60) == 0
    assert read_report(d.outbox / "finish-me")["status"] == "done"
    assert list((d.inbox / ".heygem" / "claimed").iterdir()) == []


def test_sigterm_stops_within_stop_timeout_and_the_job_resumes(daemon_factory, media_dir, long_voice):
    """stop_timeout_s = 0.5: exit soon after with the job checkpointed (claimed), finished after restart."""
    d = daemon_factory({"stop_timeout_s": 0.5, "settle_seconds": 0.3}).start()
    drop_job(d.inbox, "resume-me", _long_job(media_dir, long_voice))
    sent = _signal_when_rendering(d)
    assert d.proc.wait(30) == 0
    # grace plus one batch of frames and the ffmpeg teardown
    assert time.monotonic() - sent < 0.5 + 5.0
    assert not (d.outbox / "resume-me").exists()
    assert list((d.inbox / ".heygem" / "claimed").glob("resume-me.*"))
    assert any(e.get("event") == "job_checkpointed" for e in d.events())
    d.start()
    out = d.wait_published("resume-me", timeout=90)
    assert read_report(out)["status"] == "done"
    assert sorted(p.name for p in (out / "source").iterdir()) == ["talk.mp4", "voice.wav"]


def test_a_second_sigterm_stops_at_once_even_with_a_long_stop_timeout(daemon_factory, media_dir, long_voice):
    """stop_timeout_s = 600, two SIGTERMs: the daemon exits within seconds and the job resumes after restart."""
    d = daemon_factory({"stop_timeout_s": 600.0, "settle_seconds": 0.3}).start()
    drop_job(d.inbox, "forced", _long_job(media_dir, long_voice))
    _signal_when_rendering(d)
    time.sleep(0.3)
    assert d.proc.poll() is None  # still finishing the video after the first signal
    d.proc.send_signal(signal.SIGTERM)
    forced = time.monotonic()
    assert d.proc.wait(30) == 0
    assert time.monotonic() - forced < 5.0
    assert not (d.outbox / "forced").exists()
    assert list((d.inbox / ".heygem" / "claimed").glob("forced.*"))
    d.start()
    out = d.wait_published("forced", timeout=90)
    assert read_report(out)["status"] == "done"


def test_sigterm_while_idle_exits_at_once(daemon_factory):
    """No job running: SIGTERM ends the daemon within a second or two, exit code 0."""
    d = daemon_factory({"stop_timeout_s": 600.0}).start()
    d.proc.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    assert d.proc.wait(30) == 0
    assert time.monotonic() - sent < 3.0
