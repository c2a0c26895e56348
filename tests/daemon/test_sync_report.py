"""report.json's sync figure, through the real daemon: a video with its own speech is checked
against its own frames; a video without sound says why it has no figure."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .conftest import drop_job

pytestmark = pytest.mark.slow


@pytest.fixture
def avatars(tmp_path: Path, media_dir: Path) -> dict[str, Path]:
    """face_2 with its own speech, the same frames without sound, and 2 s of a new voice."""
    mute, voice = tmp_path / "mute.mp4", tmp_path / "voice.wav"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(media_dir / "face_2.mp4"), "-an", "-c:v", "copy", str(mute)],
                   check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(media_dir / "audio_1.wav"), "-t", "2", str(voice)],
                   check=True)
    return {"speaking.mp4": media_dir / "face_2.mp4", "mute.mp4": mute, "voice.wav": voice}


def test_every_output_carries_a_sync_figure_or_its_reason(daemon_factory, avatars):
    """The speaking avatar gets r_truth, lead_ms and frames from its held-out third; the mute one
    gets sync null and 'the video has no sound track'.  The analysis is cached: a second job with
    the same avatar reuses it."""
    d = daemon_factory({"default_engine": "builtin"}).start()
    drop_job(d.inbox, "sync", avatars, ready=True)
    report = json.loads((d.wait_published("sync", timeout=240) / "report.json").read_text())
    assert "done" == report["status"], report
    outputs = {o["video"]: o for o in report["outputs"]}

    speaking = outputs["speaking.mp4"]
    assert speaking["sync_reason"] is None
    assert set(speaking["sync"]) == {"r_truth", "lead_ms", "frames"}
    assert -1.0 <= speaking["sync"]["r_truth"] <= 1.0
    assert 25 <= speaking["sync"]["frames"] <= 42  # the last third of 125 frames, faces found
    assert abs(speaking["sync"]["lead_ms"]) <= 320
    assert speaking["timings_s"]["avatar"] > 0
    # the avatar's own filmed mouths (its mouth library) reached some frames; the count is per output
    assert 0 < speaking["exemplar_frames"] <= speaking["frames"]

    mute = outputs["mute.mp4"]
    assert mute["sync"] is None and mute["sync_reason"] == "the video has no sound track"

    drop_job(d.inbox, "again", {"speaking.mp4": avatars["speaking.mp4"], "voice.wav": avatars["voice.wav"]},
             ready=True)
    again = json.loads((d.wait_published("again", timeout=240) / "report.json").read_text())
    [output] = again["outputs"]
    assert output["sync"] == speaking["sync"]
    assert output["exemplar_frames"] == speaking["exemplar_frames"]  # same avatar, same voice, cached library
    assert any(e.get("event") == "avatar_from_cache" for e in d.events())


def test_an_engine_without_a_speech_stage_says_so(daemon_factory, avatars):
    """Engines that take the audio another way (here the test's paint engine) report sync null and why."""
    d = daemon_factory().start()
    drop_job(d.inbox, "paint", {"speaking.mp4": avatars["speaking.mp4"], "voice.wav": avatars["voice.wav"]},
             ready=True)
    [output] = json.loads((d.wait_published("paint") / "report.json").read_text())["outputs"]
    assert output["sync"] is None
    assert output["sync_reason"] == "the paint engine has no speech-to-mouth stage to check"
    assert output["exemplar_frames"] is None
