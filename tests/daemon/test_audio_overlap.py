"""The job's audio is analysed while its first videos start: a new avatar is planned and analysed
meanwhile, and a voice whose analysis fails fails its own videos alone, with the engine's words."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .conftest import drop_job

pytestmark = pytest.mark.slow

ENGINES = {"slowvoice": "SlowVoicePaintEngine", "pickyvoice": "PickyVoicePaintEngine"}


def _with_engine(daemon_factory, engine: str):
    d = daemon_factory({"default_engine": engine})
    # write_config ends with the [engines] table: the test engines join it
    with open(d.config, "a", encoding="utf-8") as config:
        config.write(f'{engine} = "tests.support.paint_engine:{ENGINES[engine]}"\n')
    return d.start()


def test_the_first_video_starts_while_the_voice_is_analysed(daemon_factory, media_dir):
    """A voice whose analysis takes 2 s: the video was probed and started before it ended
    (log order), and the output is made as usual."""
    d = _with_engine(daemon_factory, "slowvoice")
    drop_job(d.inbox, "overlap", {"talk.mp4": media_dir / "face_5.mp4", "voice.wav": media_dir / "audio_2.wav"})
    out = d.wait_published("overlap")
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "done"
    assert report["audio"][0]["features_s"] >= 2.0 and report["audio"][0]["source"] == "loudness"
    events = [json.loads(line)["event"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert events.index("video_started") < events.index("audio_prepared") < events.index("video_done")


def test_a_voice_whose_analysis_fails_fails_its_videos_alone(daemon_factory, media_dir, tmp_path: Path):
    """Two voices for one video, one silent: its output fails with the engine's reason (in the
    report and ERROR.txt), the other is made; the job is partial and the daemon goes on."""
    silent = tmp_path / "silent.wav"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "2",
                    str(silent)], check=True)
    d = _with_engine(daemon_factory, "pickyvoice")
    drop_job(d.inbox, "two voices", {"talk.mp4": media_dir / "face_5.mp4", "voice.wav": media_dir / "audio_2.wav",
                                     "silent.wav": silent, "job.toml": 'audio = ["voice.wav", "silent.wav"]\n'})
    out = d.wait_published("two voices")
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "partial"
    by_audio = {o["audio"]: o for o in report["outputs"]}
    assert by_audio["voice.wav"]["status"] == "done"
    assert by_audio["silent.wav"]["status"] == "failed"
    assert "too quiet" in by_audio["silent.wav"]["error"]
    assert any("silent.wav" in e and "too quiet" in e for e in report["errors"])
    assert "too quiet" in (out / "ERROR.txt").read_text()
    drop_job(d.inbox, "after", {"talk.mp4": media_dir / "face_5.mp4", "voice.wav": media_dir / "audio_2.wav"})
    assert json.loads((d.wait_published("after") / "report.json").read_text())["status"] == "done"
