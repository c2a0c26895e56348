"""A new avatar is decoded once: the builtin engine's analysis keeps the frames it decodes, and its
mouth library and the render pass read them back, with the same output as decoding them again."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from heygem_daemon.engines.base import EngineConfig
from heygem_daemon.engines.registry import EngineRegistry
from heygem_daemon.faces.cache import FaceTrackCache
from heygem_daemon.faces.tracker import FaceTracker
from heygem_daemon.jobs.report import OutputReport
from heygem_daemon.media import FrameReader, frame_spool, frames
from heygem_daemon.media.audio import decode_audio
from heygem_daemon.render.video import VideoTask, VideoTools, make_video
from heygem_daemon.settings import LimitSettings, OutputSettings
from tests.support.media import sample_media


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def avatar(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 2 s talking-head avatar with its own sound, and that sound as the job's speech."""
    folder = tmp_path_factory.mktemp("avatar")
    video, speech = folder / "face.mp4", folder / "speech.wav"
    _ffmpeg("-i", str(sample_media("face_2.mp4")), "-t", "2", "-vf", "scale=-2:240", "-r", "25",
            "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(video))
    _ffmpeg("-i", str(video), "-vn", "-ac", "1", "-ar", "16000", str(speech))
    return video, speech


def _first_job(video: Path, speech: Path, work: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, np.ndarray]:
    """A first job of ``video`` (cold cache): the decoders of it that ran, and the output's frames."""
    started: list[list[str]] = []
    real = frames.OwnedProcess

    class Recording(real):  # type: ignore[misc, valid-type]
        def __init__(self, args, **kwargs):  # noqa: ANN001, ANN003 -- a pass-through
            started.append(list(args))
            super().__init__(args, **kwargs)

    engine = EngineRegistry(EngineConfig(device="cpu")).get("builtin")
    features = engine.prepare(decode_audio(speech, LimitSettings()))
    task = VideoTask(video, speech, 2.0, work / "out.mp4", OutputSettings(), LimitSettings(), work / "spool")
    tools = VideoTools(engine, FaceTracker(), FaceTrackCache(work / "faces"), check_stop=lambda: None)
    with monkeypatch.context() as patch:
        patch.setattr(frames, "OwnedProcess", Recording)
        make_video(task, features, tools, OutputReport(video=video.name, audio=speech.name))
    decoders = [args for args in started if "rawvideo" in args and any(str(video) in a for a in args)]
    with FrameReader(work / "out.mp4", (240, 240)) as reader:
        return len(decoders), reader.read_batch(1000)


def test_a_new_avatar_is_decoded_once_and_renders_as_if_decoded_again(
        tmp_path: Path, avatar: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """With the frames kept, one decoder runs (the analysis's); with no room to keep them, three
    (the analysis, the mouth library's picked frames, the render pass). The outputs are the same."""
    video, speech = avatar
    once, kept = _first_job(video, speech, tmp_path / "kept", monkeypatch)
    monkeypatch.setattr(frame_spool, "FRAME_SPOOL_MAX_BYTES", 0)
    thrice, decoded = _first_job(video, speech, tmp_path / "decoded", monkeypatch)
    assert (once, thrice) == (1, 3)
    assert len(kept) == len(decoded) == 50
    assert np.array_equal(kept, decoded)
