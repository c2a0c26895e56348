"""An avatar is tracked once: the second job with the same avatar takes its faces from the cache,
whatever the length of its speech (shorter than the video, as long, a frame longer, pingpong) and
whichever engine."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

from heygem_daemon.engines.base import AudioFeatures, Engine, EngineConfig
from heygem_daemon.faces.cache import FaceTrackCache
from heygem_daemon.faces.tracker import FaceTracker
from heygem_daemon.jobs.report import OutputReport
from heygem_daemon.render.video import VideoTask, VideoTools, make_video
from heygem_daemon.settings import LimitSettings, OutputSettings
from tests.support.media import sample_media
from tests.support.paint_engine import PaintEngine

FPS = 25


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def avatar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2 s talking-head avatar at 25 fps (50 frames), with its own sound."""
    return _avatar(tmp_path_factory.mktemp("avatar") / "face.mp4", 2.0)


@pytest.fixture(scope="module")
def short_avatar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1 s avatar (25 frames), for the slow engines."""
    return _avatar(tmp_path_factory.mktemp("avatar") / "face.mp4", 1.0)


def _avatar(path: Path, seconds: float) -> Path:
    _ffmpeg("-i", str(sample_media("face_2.mp4")), "-t", f"{seconds:g}", "-vf", "scale=-2:240", "-r", str(FPS),
            "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(path))
    return path


@pytest.fixture(scope="module")
def tracker() -> FaceTracker:
    return FaceTracker()


def _speech(folder: Path, seconds: float) -> Path:
    path = folder / f"voice_{seconds:g}.wav"
    if not path.exists():
        _ffmpeg("-f", "lavfi", "-i", f"sine=frequency=220:d={seconds}", "-ar", "16000", str(path))
    return path


def _job(engine: Engine, tracker: FaceTracker, avatar: Path, cache: Path, seconds: float,
         when_shorter: str = "pingpong", features: AudioFeatures | None = None) -> tuple[OutputReport, list[str]]:
    """One job of ``avatar`` with ``seconds`` of speech: its report and its log events' names."""
    report, logs = _logged_job(engine, tracker, avatar, cache, seconds, when_shorter, features)
    return report, [entry["event"] for entry in logs]


def _logged_job(engine: Engine, tracker: FaceTracker, avatar: Path, cache: Path, seconds: float,
                when_shorter: str = "pingpong",
                features: AudioFeatures | None = None) -> tuple[OutputReport, list[dict[str, object]]]:
    work = cache.parent
    speech = _speech(work, seconds)
    task = VideoTask(avatar, speech, seconds, work / "out.mp4", OutputSettings(when_video_shorter=when_shorter),
                     LimitSettings(), work / "spool")
    if features is None:
        features = AudioFeatures(data=np.ones(int(seconds * 100) + 1), duration_s=seconds, source="loudness")
    report = OutputReport(video=avatar.name, audio=speech.name)
    with capture_logs() as logs:
        make_video(task, features, VideoTools(engine, tracker, FaceTrackCache(cache), check_stop=lambda: None), report)
    return report, logs


@pytest.mark.parametrize(("seconds", "frames"), [(1.0, 25), (2.0, 50), (2.04, 51), (3.0, 75)],
                         ids=["shorter", "as-long", "one-frame-longer", "pingpong"])
def test_the_second_job_with_an_avatar_takes_its_faces_from_the_cache(
        tmp_path: Path, avatar: Path, tracker: FaceTracker, seconds: float, frames: int) -> None:
    """The first job tracks the avatar and stores the track; the second, with the same speech,
    tracks nothing: faces_from_cache, no faces_tracked."""
    engine, cache = PaintEngine(EngineConfig()), tmp_path / "faces"
    first, first_events = _job(engine, tracker, avatar, cache, seconds)
    second, second_events = _job(engine, tracker, avatar, cache, seconds)
    assert ("faces_tracked" in first_events, "faces_from_cache" in first_events) == (True, False)
    assert ("faces_tracked" in second_events, "faces_from_cache" in second_events) == (False, True)
    assert frames == first.frames == second.frames
    assert first.frames_with_face == second.frames_with_face == frames


@pytest.fixture(scope="module")
def variable_rate_avatar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """face_1.mp4, a phone-style variable-rate clip (135 stored frames over 6.1 s, read at 30 fps),
    made smaller with its timestamps kept."""
    path = tmp_path_factory.mktemp("avatar") / "vfr.mp4"
    _ffmpeg("-i", str(sample_media("face_1.mp4")), "-vf", "scale=-2:240", "-fps_mode", "passthrough",
            "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(path))
    return path


@pytest.mark.parametrize("extra_frames", [-60, 0, 1, 45], ids=["shorter", "as-long", "one-frame-longer", "pingpong"])
def test_a_variable_rate_avatar_is_tracked_once_too(
        tmp_path: Path, variable_rate_avatar: Path, tracker: FaceTracker, extra_frames: int) -> None:
    """Its constant-rate frames are counted the same by every read, so the second job finds the
    first job's track whatever the length of the speech."""
    from heygem_daemon.media.probe import probe

    video = probe(variable_rate_avatar, LimitSettings()).video
    assert video is not None and video.variable_rate
    seconds = (video.frame_count + extra_frames) / video.fps
    engine, cache = PaintEngine(EngineConfig()), tmp_path / "faces"
    first, first_events = _job(engine, tracker, variable_rate_avatar, cache, seconds)
    second, second_events = _job(engine, tracker, variable_rate_avatar, cache, seconds)
    assert ("faces_tracked" in first_events, "faces_from_cache" in first_events) == (True, False)
    assert ("faces_tracked" in second_events, "faces_from_cache" in second_events) == (False, True)
    assert first.frames == second.frames == round(seconds * video.fps)
    assert first.frames_with_face == second.frames_with_face


def test_an_avatar_tracked_to_its_last_frame_is_stored_as_the_whole_video(
        tmp_path: Path, avatar: Path, tracker: FaceTracker) -> None:
    """Speech exactly as long as the video: the track is the whole video's, so a later job with
    longer speech (pingpong) or shorter speech takes it too."""
    engine, cache = PaintEngine(EngineConfig()), tmp_path / "faces"
    _, logs = _logged_job(engine, tracker, avatar, cache, 2.0)
    assert [True] == [e["whole_video"] for e in logs if e["event"] == "faces_tracked"]
    for seconds in (3.0, 1.0):
        _, events = _job(engine, tracker, avatar, cache, seconds)
        assert "faces_from_cache" in events and "faces_tracked" not in events


def test_a_track_of_the_first_frames_serves_any_shorter_speech(
        tmp_path: Path, avatar: Path, tracker: FaceTracker) -> None:
    """A job with 1.4 s of speech tracks the avatar's first 35 frames; a later job with 1 s takes
    them from the cache; one with 1.8 s needs frames nobody tracked, and tracks."""
    engine, cache = PaintEngine(EngineConfig()), tmp_path / "faces"
    _job(engine, tracker, avatar, cache, 1.4)
    _, shorter = _job(engine, tracker, avatar, cache, 1.0)
    _, longer = _job(engine, tracker, avatar, cache, 1.8)
    assert "faces_from_cache" in shorter and "faces_tracked" not in shorter
    assert "faces_tracked" in longer


@pytest.mark.parametrize("kind", ["constant-rate", "variable-rate"])
def test_the_builtin_engine_tracks_an_avatar_as_long_as_its_speech_once(
        tmp_path: Path, avatar: Path, variable_rate_avatar: Path, tracker: FaceTracker, kind: str) -> None:
    """The builtin engine's avatar analysis tracks the avatar (its own speech, as long as the video);
    its render pass and the second job take those faces from the cache, and the second job's
    tracking time is a fraction of the first's -- a variable-rate avatar's too (it used to be tracked
    by the analysis, again by the render pass and again in every later job)."""
    from heygem_daemon.engines.registry import EngineRegistry
    from heygem_daemon.media.audio import decode_audio
    from heygem_daemon.media.probe import probe

    clip = avatar if kind == "constant-rate" else variable_rate_avatar
    video = probe(clip, LimitSettings()).video
    assert video is not None and video.variable_rate == (kind == "variable-rate")
    seconds = video.frame_count / video.fps
    engine = EngineRegistry(EngineConfig(device="cpu")).get("builtin")
    cache = tmp_path / "faces"
    own = tmp_path / "own.wav"
    _ffmpeg("-i", str(clip), "-vn", "-ac", "1", "-ar", "16000", "-t", f"{seconds}", str(own))
    features = engine.prepare(decode_audio(own, LimitSettings()))
    first, first_events = _job(engine, tracker, clip, cache, seconds, features=features)
    second, second_events = _job(engine, tracker, clip, cache, seconds, features=features)
    assert first_events.count("faces_tracked") == 1 and "faces_from_cache" in first_events
    assert "faces_tracked" not in second_events and "avatar_from_cache" in second_events
    assert second.timings_s.faces < first.timings_s.faces / 4


def test_the_wav2lip_engine_tracks_an_avatar_as_long_as_its_speech_once(
        tmp_path: Path, short_avatar: Path, tracker: FaceTracker) -> None:
    """Wav2Lip (random weights, CPU) with speech as long as the avatar: the first job tracks it in
    the render pass and stores it whole; the second takes it from the cache."""
    torch = pytest.importorskip("torch")
    from heygem_daemon.engines.base import AudioClip
    from heygem_daemon.engines.registry import EngineRegistry
    from heygem_daemon.engines.wav2lip_net import Wav2LipNet
    from heygem_daemon.media.audio import decode_audio

    torch.manual_seed(0)
    checkpoint = tmp_path / "wav2lip_gan.pth"
    state = {"module." + k: v for k, v in Wav2LipNet().state_dict().items()}
    torch.save({"state_dict": state, "optimizer": {}, "global_step": 0, "global_epoch": 0}, checkpoint)
    engine = EngineRegistry(EngineConfig(device="cpu", models={"wav2lip": checkpoint}, batch_size=16)).get("wav2lip")
    speech = decode_audio(_speech(tmp_path, 1.0), LimitSettings())
    features = engine.prepare(AudioClip(speech.samples, speech.sample_rate))
    cache = tmp_path / "faces"
    first, first_logs = _logged_job(engine, tracker, short_avatar, cache, 1.0, features=features)
    second, second_logs = _logged_job(engine, tracker, short_avatar, cache, 1.0, features=features)
    assert [True] == [e["whole_video"] for e in first_logs if e["event"] == "faces_tracked"]
    assert ["faces_from_cache"] == [e["event"] for e in second_logs if e["event"].startswith("faces_")]
    assert second.timings_s.faces < first.timings_s.faces / 4
