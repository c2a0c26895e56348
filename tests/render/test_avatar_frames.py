"""Engines that keep per-avatar work are told which avatar frames each batch shows (engines/base.py AvatarFrames)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from heygem_daemon.engines.base import AudioFeatures, AvatarFrames, EngineConfig
from heygem_daemon.faces.cache import FaceTrackCache
from heygem_daemon.faces.tracker import FaceTracker
from heygem_daemon.jobs.report import OutputReport
from heygem_daemon.render.video import VideoTask, VideoTools, make_video
from heygem_daemon.settings import LimitSettings, OutputSettings
from tests.support.paint_engine import PaintEngine


class _AvatarRecordingEngine(PaintEngine):
    """The paint engine, remembering the avatar frames it was given."""

    per_avatar_cache = True

    def __init__(self, config: EngineConfig) -> None:
        super().__init__(config)
        self.seen: list[AvatarFrames] = []

    def render(self, frames, faces, features, frame_indices, fps, *, avatar=None):  # type: ignore[override]
        assert avatar is not None
        self.seen.append(avatar)
        return super().render(frames, faces, features, frame_indices, fps)


def test_a_pingpong_render_names_the_source_frame_of_every_output_frame(tmp_path: Path, media_dir: Path) -> None:
    """A 1 s avatar (25 frames) under 2 s of audio plays forward then backward: the engine sees source
    frames 0..24 then 23..0 (the turn is not shown twice), under one content key, and the avatar's frame count."""
    video, audio = tmp_path / "face.mp4", tmp_path / "voice.wav"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(media_dir / "face_2.mp4"), "-t", "1", "-an",
                    "-vf", "scale=-2:240", "-c:v", "libx264", "-preset", "ultrafast", str(video)], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=220:d=2", str(audio)],
                   check=True)
    engine = _AvatarRecordingEngine(EngineConfig())
    task = VideoTask(video, audio, 2.0, tmp_path / "out.mp4", OutputSettings(when_video_shorter="pingpong"),
                     LimitSettings(), tmp_path / "spool")
    tools = VideoTools(engine, FaceTracker(), FaceTrackCache(tmp_path / "faces"), check_stop=lambda: None)

    make_video(task, AudioFeatures(data=np.ones(200), duration_s=2.0, source="loudness"),
               tools, OutputReport(video=video.name, audio=audio.name))

    sources = np.concatenate([a.sources for a in engine.seen]).tolist()
    assert list(range(25)) == sources[:25]
    assert list(range(23, -1, -1)) == sources[25:49]
    assert 1 == len({a.key for a in engine.seen})
    assert {25} == {a.frame_count for a in engine.seen}


class _SizedEngine:
    def __init__(self, device: str, batch_size: int) -> None:
        self.device, self.batch_size = device, batch_size


def test_an_engine_on_a_gpu_gets_its_whole_batch_at_720p_and_one_on_the_cpu_stays_within_24_mb() -> None:
    """At 1280x720 a CPU engine's batch holds at most 24 MB (9 frames); an engine on CUDA gets its 128 frames,
    since its network runs near full speed only from about that size; 4K on a GPU is still bounded by bytes."""
    from heygem_daemon.render.video import frames_per_batch

    assert 9 == frames_per_batch(_SizedEngine("cpu", 128), (1280, 720))  # type: ignore[arg-type]
    assert 128 == frames_per_batch(_SizedEngine("cuda:0", 128), (1280, 720))  # type: ignore[arg-type]
    assert 21 == frames_per_batch(_SizedEngine("cuda:0", 128), (3840, 2160))  # type: ignore[arg-type]
