"""The musetalk engine on CPU with random weights over real sample media, and in the daemon.

No real weights exist here: random ones in the public layout stand in (small configs of
the real classes, except one test with the published architecture).  Their faces are
coloured noise, which makes every pixel the engine touched easy to see: above the nose
nothing may change, below it the engine's face must arrive through a feathered mask.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
pytest.importorskip("diffusers", reason="diffusers (the [musetalk] extra) holds MuseTalk's UNet and VAE")

from heygem_daemon.engines.base import AudioClip, AudioFeatures, AvatarFrames, EngineConfig, Face  # noqa: E402
from heygem_daemon.engines.musetalk import MuseTalkEngine  # noqa: E402
from heygem_daemon.engines.musetalk_blend import NOSE_BASE  # noqa: E402

from tests.support.live_daemon import LiveDaemon  # noqa: E402
from tests.support.media import sample_media  # noqa: E402
from tests.support.musetalk_weights import make_weights  # noqa: E402

FRAMES = 6


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_weights(tmp_path_factory.mktemp("musetalk") / "models")


@pytest.fixture(scope="module")
def engine(weights: Path, tmp_path_factory: pytest.TempPathFactory) -> MuseTalkEngine:
    cache = tmp_path_factory.mktemp("cache")
    return MuseTalkEngine(EngineConfig(device="cpu", models={"musetalk": weights}, cache_dir=cache, batch_size=4))


@pytest.fixture(scope="module")
def clip() -> tuple[np.ndarray, list[Face | None]]:
    from heygem_daemon.faces.tracker import FaceTracker

    capture = cv2.VideoCapture(str(sample_media("face_2.mp4")))
    frames = [capture.read()[1] for _ in range(FRAMES)]
    capture.release()
    track = FaceTracker().track(frames)
    stack = np.stack(frames)
    return stack, [track.face(i, stack.shape[2], stack.shape[1]) for i in range(FRAMES)]


@pytest.fixture(scope="module")
def features(engine: MuseTalkEngine) -> AudioFeatures:
    rng = np.random.default_rng(0)
    return engine.prepare(AudioClip((0.1 * rng.standard_normal(16000)).astype(np.float32)))


def test_report_facts(engine: MuseTalkEngine) -> None:
    facts = engine.describe()
    assert facts["engine"] == "musetalk" and facts["device"] == "cpu" and facts["precision"] == "fp32"


def test_above_the_nose_nothing_changes_below_it_the_engine_draws(engine, clip, features) -> None:
    frames, faces = clip
    out = engine.render(frames, faces, features, np.arange(FRAMES), 25.0)
    assert out.shape == frames.shape and out.dtype == np.uint8
    for b, face in enumerate(faces):
        assert face is not None and face.landmarks is not None
        nose = int(np.floor(face.landmarks[NOSE_BASE, 1]))
        diff = np.abs(out[b].astype(int) - frames[b].astype(int)).max(axis=2)
        assert diff[:nose].max() == 0, "a pixel above the nose base changed"
        lips = face.landmarks[[13, 14]].mean(axis=0).astype(int)
        assert diff[lips[1] - 5 : lips[1] + 5, lips[0] - 5 : lips[0] + 5].mean() > 10, "the mouth is not the engine's"


def test_the_paste_has_no_seam(engine, clip, features) -> None:
    """Feathered: along the mask's edge the change grows smoothly (no step between neighbours)."""
    frames, faces = clip
    out = engine.render(frames[:1], faces[:1], features, np.arange(1), 25.0)
    change = np.abs(out[0].astype(np.float32) - frames[0].astype(np.float32)).mean(axis=2)
    step_out = np.abs(np.diff(change, axis=0)).max()
    # coloured-noise faces differ by up to ~100 levels from the frame; a hard edge would step by that much
    inside = change[change > 0]
    assert inside.size > 0
    edge_steps = np.abs(np.diff(change, axis=1))[:, :][(change[:, 1:] > 0) & (change[:, 1:] < 0.2 * change.max())]
    assert edge_steps.mean() < 3.0, f"edge steps {edge_steps.mean():.1f} (largest step anywhere {step_out:.0f})"


def test_rendering_in_place_gives_the_frames_a_copy_would_get(engine, clip, features) -> None:
    """in_place=True (the render pass) returns the very frames it was given, drawn into exactly as the
    copy a plain call returns -- with a face in every frame (one copy down into place) and with one
    frame without a face (that frame untouched)."""
    frames, faces = clip
    for found in (list(faces), [None, *faces[1:]]):
        copied = engine.render(frames, found, features, np.arange(FRAMES), 25.0)
        given = frames.copy()
        drawn = engine.render(given, found, features, np.arange(FRAMES), 25.0, in_place=True)
        assert drawn is given
        assert np.array_equal(drawn, copied)
        assert np.array_equal(drawn[0], frames[0]) == (found[0] is None)


def test_frames_without_a_face_come_back_unchanged(engine, clip, features) -> None:
    frames, faces = clip
    out = engine.render(frames[:2], [None, None], features, np.arange(2), 25.0)
    assert np.array_equal(out, frames[:2])


def test_reference_latents_are_encoded_once_per_avatar(engine, clip, features, monkeypatch) -> None:
    frames, faces = clip
    avatar = AvatarFrames("face_2-digest-tracker", np.arange(FRAMES, dtype=np.int64), FRAMES)
    first = engine.render(frames, faces, features, np.arange(FRAMES), 25.0, avatar=avatar)
    calls = []
    original = engine.encode
    monkeypatch.setattr(engine, "encode", lambda source: calls.append(len(source)) or original(source))
    second = engine.render(frames, faces, features, np.arange(FRAMES), 25.0, avatar=avatar)
    assert calls == [], "the second job encoded frames the cache holds"
    assert np.array_equal(first, second)
    # a pingpong revisits frames: the same cached latents serve them
    back = AvatarFrames(avatar.key, np.arange(FRAMES, dtype=np.int64)[::-1].copy(), FRAMES)
    engine.render(frames[::-1].copy(), faces[::-1], features, np.arange(FRAMES), 25.0, avatar=back)
    assert calls == []


def _make_job(inbox: Path, media_dir: Path, name: str, seconds: float) -> Path:
    build = inbox.parent / f".build-{name}"
    build.mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(media_dir / "face_2.mp4"), "-t", "1",
                    "-vf", "scale=360:360", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
                    str(build / "face.mp4")], check=True, timeout=60)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(media_dir / "audio_1.wav"), "-t", str(seconds),
                    str(build / "voice.wav")], check=True, timeout=60)
    (build / "job.toml").write_text('engine = "musetalk"\n', encoding="utf-8")
    (build / "READY").touch()
    build.rename(inbox / name)
    return inbox / name


@pytest.mark.slow
def test_daemon_jobs_end_done_and_the_second_takes_latents_from_the_cache(weights, tmp_path, media_dir) -> None:
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()
    config = tmp_path / "daemon.toml"
    config.write_text(f"""
inbox = "{inbox}"
outbox = "{outbox}"
cache_dir = "{tmp_path / 'cache'}"
settle_seconds = 0.5
poll_interval = 0.2
device = "cpu"

[models]
musetalk = "{weights}"
""", encoding="utf-8")
    with LiveDaemon(config, tmp_path / "daemon.log", outbox / "status.json", {}) as daemon:
        walls = []
        for name in ("first", "second"):
            started = time.monotonic()
            _make_job(inbox, media_dir, name, 0.6)
            report_path = outbox / name / "report.json"
            deadline = started + 240
            while not report_path.exists() and time.monotonic() < deadline:
                time.sleep(0.3)
            walls.append(time.monotonic() - started)
            assert report_path.exists(), daemon.log()
            report = json.loads(report_path.read_text())
            assert report["status"] == "done", report
            assert (report["engine"], report["device"], report["precision"]) == ("musetalk", "cpu", "fp32")
        events = [e.get("event") for e in daemon.events()]
        assert "musetalk_latents_encoded" in events and "musetalk_latents_from_cache" in events


@pytest.mark.slow
def test_the_published_architecture_renders_a_frame(tmp_path, clip, features) -> None:
    """unet.pth of UNet2DConditionModel(**musetalk.json) (850 M parameters), sd-vae-ft-mse's and
    whisper-tiny's configs: loads with its keys checked and renders on the CPU (one frame: ~1.5 min
    on 2 cores, most of it making and reading 3.4 GB of weights)."""
    frames, faces = clip
    started = time.perf_counter()
    root = make_weights(tmp_path / "models", real=True)
    made = time.perf_counter() - started
    engine = MuseTalkEngine(EngineConfig(device="cpu", models={"musetalk": root}, batch_size=1))
    loaded = time.perf_counter() - started - made
    assert engine.models.parameters > 900_000_000
    audio = engine.prepare(AudioClip(np.zeros(16000, np.float32)))
    assert audio.data.shape[1:] == (5, 384)  # whisper-tiny: embeddings + 4 layers, 384 wide
    out = engine.render(frames[:1], faces[:1], audio, np.arange(1), 25.0)
    nose = int(np.floor(faces[0].landmarks[NOSE_BASE, 1]))  # type: ignore[index, union-attr]
    assert np.array_equal(out[0, :nose], frames[0, :nose]) and not np.array_equal(out[0], frames[0])
    print(f"real architecture: weights made in {made:.0f} s, loaded in {loaded:.0f} s, "
          f"whole test {time.perf_counter() - started:.0f} s")
    del engine
    shutil.rmtree(root)
