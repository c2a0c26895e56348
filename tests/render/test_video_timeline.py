"""One output rendered in-process: report.json's timeline says which when_video_shorter policy was used."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from heygem_daemon.engines.base import AudioFeatures, EngineConfig
from heygem_daemon.faces.cache import FaceTrackCache
from heygem_daemon.faces.tracker import FaceTracker
from heygem_daemon.jobs.report import OutputReport
from heygem_daemon.render.video import VideoTask, VideoTools, make_video
from heygem_daemon.media import timeline
from heygem_daemon.settings import LimitSettings, OutputSettings
from tests.support.paint_engine import PaintEngine


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def test_pingpong_over_the_spool_cap_is_recorded_as_a_loop(tmp_path: Path, media_dir: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A 1 s face video under 2 s of audio, with a spool cap of one frame: the output loops, and
    report.timeline says so: policy loop, requested pingpong, and the reason."""
    video, audio = tmp_path / "face.mp4", tmp_path / "voice.wav"
    _ffmpeg("-i", str(media_dir / "face_2.mp4"), "-t", "1", "-an", "-vf", "scale=-2:240",
            "-c:v", "libx264", "-preset", "ultrafast", str(video))
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=220:d=2", str(audio))
    monkeypatch.setattr(timeline, "SPOOL_MAX_BYTES", 1)
    task = VideoTask(video, audio, 2.0, tmp_path / "out.mp4", OutputSettings(when_video_shorter="pingpong"),
                     LimitSettings(), tmp_path / "spool")
    tools = VideoTools(PaintEngine(EngineConfig()), FaceTracker(), FaceTrackCache(tmp_path / "faces"),
                       check_stop=lambda: None)
    report = OutputReport(video=video.name, audio=audio.name)

    make_video(task, AudioFeatures(data=np.ones(200), duration_s=2.0, source="loudness"), tools, report)

    assert report.timeline is not None
    assert ("loop", "pingpong") == (report.timeline.policy, report.timeline.requested)
    assert "over the 1 bytes cap" in (report.timeline.fallback_reason or "")
    assert 50 == report.frames
    # the render pass's steps are timed by name (decode, faces, render, encode)
    assert all(t > 0 for t in (report.timings_s.decode, report.timings_s.render, report.timings_s.encode))
