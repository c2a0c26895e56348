"""The daemon as users run it: a real process, a real inbox, real media."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .conftest import drop_job, probe_duration, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def long_speech(tmp_path: Path, media_dir: Path) -> Path:
    """10 s of real speech (audio_1 then audio_2), longer than every sample video."""
    out = tmp_path / "speech.wav"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(media_dir / "audio_1.wav"), "-i", str(media_dir / "audio_2.wav"),
         "-filter_complex", "[0:a]aresample=48000[a];[1:a]aresample=48000[b];[a][b]concat=n=2:v=0:a=1",
         "-ac", "1", str(out)], check=True,
    )
    return out


def test_dropped_job_is_published_with_report_log_and_matching_duration(daemon_factory, media_dir, long_speech):
    """A job copied into the inbox appears in the outbox as H.264/AAC lasting as long as the audio."""
    d = daemon_factory().start()
    drop_job(d.inbox, "Quarterly update", {"presenter.mp4": media_dir / "face_3.mp4", "voice.wav": long_speech})
    out = d.wait_published("Quarterly update")

    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "done"
    assert [o["file"] for o in report["outputs"]] == ["presenter_voice.mp4"]
    audio_s = report["audio"][0]["duration_s"]
    info = probe_duration(out / "presenter_voice.mp4")
    codecs = sorted(s["codec_name"] for s in info["streams"])
    assert codecs == ["aac", "h264"]
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    num, den = map(int, video["r_frame_rate"].split("/"))
    assert abs(float(video["duration"]) - audio_s) <= den / num + 1e-6
    assert abs(float(info["format"]["duration"]) - audio_s) <= den / num + 1e-6
    log_rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert {r["event"] for r in log_rows} >= {"job_started", "video_done", "job_finished"}
    assert all(r["job"] == "Quarterly update" for r in log_rows)
    assert sorted(p.name for p in (out / "source").iterdir()) == ["presenter.mp4", "voice.wav"]
    assert not (out / "ERROR.txt").exists()
    assert [p.name for p in d.inbox.iterdir()] == [".heygem"]
    assert list((d.inbox / ".heygem" / "claimed").iterdir()) == []
    assert list((d.outbox / ".staging").iterdir()) == []


def test_bad_jobs_end_with_error_txt_and_the_daemon_goes_on(daemon_factory, media_dir, tmp_path):
    """Missing audio, an unknown key and a corrupt video each fail alone, sources kept; the next job runs."""
    d = daemon_factory().start()
    drop_job(d.inbox, "no-audio", {"talk.mp4": media_dir / "face_5.mp4"})
    drop_job(d.inbox, "typo", {"talk.mp4": media_dir / "face_5.mp4", "voice.wav": media_dir / "audio_2.wav",
                               "job.toml": 'vidoes = ["talk.mp4"]\n'})
    drop_job(d.inbox, "corrupt", {"talk.mp4": b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40,
                                  "voice.wav": media_dir / "audio_2.wav"})
    drop_job(d.inbox, "good", {"talk.mp4": media_dir / "face_5.mp4", "voice.wav": media_dir / "audio_2.wav"})

    expectations = {"no-audio": "audio", "typo": "vidoes", "corrupt": "talk.mp4"}
    for name, word in expectations.items():
        out = d.wait_published(name)
        report = json.loads((out / "report.json").read_text())
        assert report["status"] == "failed", name
        error = (out / "ERROR.txt").read_text()
        assert word in error, (name, error)
        assert (out / "source" / "talk.mp4").is_file()
    assert "videos" in (d.outbox / "typo" / "ERROR.txt").read_text()  # suggests the fix
    good = d.wait_published("good")
    assert json.loads((good / "report.json").read_text())["status"] == "done"
    assert d.proc.poll() is None


def test_kill_9_mid_job_then_restart_completes_once_without_redoing_finished_videos(
    daemon_factory, media_dir, tmp_path
):
    """SIGKILL after the first of two videos: a restart publishes the job once, first video not redone."""
    d = daemon_factory()
    d.start()
    drop_job(d.inbox, "two", {"a.mp4": media_dir / "face_2.mp4", "b.mp4": media_dir / "face_3.mp4",
                              "voice.wav": media_dir / "audio_1.wav"})
    wait_for(lambda: any(e.get("event") == "video_done" for e in d.events()), 120, d.log)
    d.kill()
    assert not (d.outbox / "two").exists()
    assert list((d.inbox / ".heygem" / "claimed").glob("two.*"))  # still claimed, not lost

    d.start()
    out = d.wait_published("two")
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "done"
    assert sorted(o["file"] for o in report["outputs"]) == ["a_voice.mp4", "b_voice.mp4"]
    done_events = [e for e in d.events() if e.get("event") == "video_done"]
    assert len(done_events) == 2  # one before the kill, one after: nothing redone
    assert any(e.get("event") == "video_already_done" for e in d.events())
    assert sorted(p.name for p in d.outbox.iterdir() if not p.name.startswith(".")) == [
        "index.html", "status.js", "status.json", "two"]
    assert sorted(p.name for p in (out / "source").iterdir()) == ["a.mp4", "b.mp4", "voice.wav"]
    assert list((d.inbox / ".heygem" / "claimed").iterdir()) == []
