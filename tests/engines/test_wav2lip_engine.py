"""The wav2lip engine on CPU with random weights over real sample media.

No real weights exist here: a freshly initialised network saved in the public
checkpoint layout stands in; its mouths are grey blobs, but every path the real
weights take (load, mel, crop, network, paste) runs for real.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from heygem_daemon.engines.base import AudioClip, AudioFeatures, EngineConfig, Face
from heygem_daemon.engines.registry import EngineRegistry
from heygem_daemon.engines.wav2lip import Wav2LipEngine, crop_box
from heygem_daemon.engines.wav2lip_net import Wav2LipNet

from tests.support.media import sample_media

librosa = pytest.importorskip("librosa", reason="librosa (a test dependency) decodes the sample audio")

#: face_1.mp4 (700×700): a box around the speaker's face, chosen by eye
FACE_1_BOX = np.array([260.0, 120.0, 500.0, 380.0], dtype=np.float32)


def _frames(name: str, limit: int) -> tuple[np.ndarray, float]:
    capture = cv2.VideoCapture(str(sample_media(name)))
    try:
        frames = []
        while len(frames) < limit:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame)
        return np.stack(frames), float(capture.get(cv2.CAP_PROP_FPS))
    finally:
        capture.release()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "wav2lip_gan.pth"
    state = {"module." + k: v for k, v in Wav2LipNet().state_dict().items()}
    torch.save({"state_dict": state, "optimizer": {}, "global_step": 0, "global_epoch": 0}, path)
    return path


@pytest.fixture(scope="module")
def engine(checkpoint: Path) -> Wav2LipEngine:
    registry = EngineRegistry(EngineConfig(device="auto", models={"wav2lip": checkpoint}, batch_size=16))
    created = registry.get("wav2lip")
    assert isinstance(created, Wav2LipEngine)
    return created


@pytest.fixture(scope="module")
def features(engine: Wav2LipEngine) -> AudioFeatures:
    samples, _ = librosa.load(sample_media("audio_1.wav"), sr=16_000, mono=True)
    return engine.prepare(AudioClip(samples.astype(np.float32)))


def test_registry_builds_the_engine_on_this_machine(engine: Wav2LipEngine, checkpoint: Path) -> None:
    """The registry's 'wav2lip' target loads the checkpoint; describe() reports it and the device."""
    expected_device = "cuda:0" if torch.cuda.is_available() else "cpu"
    facts = engine.describe()
    assert (engine.device, facts["device"]) == (expected_device, expected_device)
    assert facts["checkpoint"] == str(checkpoint)
    assert facts["parameters"] == 36_298_035


def test_prepare_gives_80_mel_frames_per_second(features: AudioFeatures) -> None:
    """prepare() returns the whole audio's (80, T) mel, T = samples // 200 + 1."""
    assert features.data.shape[0] == 80
    assert abs(features.data.shape[1] / 80.0 - features.duration_s) < 0.02
    assert features.source == "mel:wav2lip"


def test_render_keeps_everything_outside_the_mouth(engine: Wav2LipEngine, features: AudioFeatures) -> None:
    """Shape and dtype are kept; no-face frames and pixels outside the padded box are byte-identical."""
    frames, fps = _frames("face_1.mp4", 6)
    before = frames.copy()
    face = Face(box=FACE_1_BOX)
    faces = [face, None, face, face, None, face]
    out = engine.render(frames, faces, features, np.arange(10, 16), fps)

    assert (out.shape, out.dtype) == (frames.shape, frames.dtype)
    np.testing.assert_array_equal(frames, before)  # input untouched
    box = crop_box(face, frames.shape[2], frames.shape[1])
    assert box is not None and box.y1 == 380 + 10
    for b, f in enumerate(faces):
        if f is None:
            assert np.array_equal(out[b], frames[b])
            continue
        outside = np.ones(frames.shape[1:3], dtype=bool)
        outside[box.y0 : box.y1, box.x0 : box.x1] = False
        assert np.array_equal(out[b][outside], frames[b][outside])
        assert np.array_equal(out[b, : box.y0], frames[b, : box.y0])
        mouth = (slice(box.y0 + (box.y1 - box.y0) * 2 // 3, box.y1 - 20), slice(box.x0 + 60, box.x1 - 60))
        assert not np.array_equal(out[b][mouth], frames[b][mouth])


def test_paste_is_feathered(engine: Wav2LipEngine, features: AudioFeatures) -> None:
    """The crop's border rows and columns are (almost) unchanged: no box edge shows."""
    frames, fps = _frames("face_1.mp4", 1)
    face = Face(box=FACE_1_BOX)
    out = engine.render(frames, [face], features, np.array([0]), fps)
    box = crop_box(face, frames.shape[2], frames.shape[1])
    assert box is not None
    diff = np.abs(out[0].astype(int) - frames[0].astype(int))
    edges = [diff[box.y0 : box.y1, box.x0], diff[box.y0 : box.y1, box.x1 - 1], diff[box.y1 - 1, box.x0 : box.x1]]
    assert max(int(e.max()) for e in edges) <= 2


def test_frames_without_any_face_come_back_unchanged(engine: Wav2LipEngine, features: AudioFeatures) -> None:
    """A batch with no face at all skips the network and returns equal frames."""
    frames, fps = _frames("face_1.mp4", 2)
    out = engine.render(frames, [None, None], features, np.array([0, 1]), fps)
    assert np.array_equal(out, frames)


@pytest.mark.slow  # ~15 s on an idle 2-core box (the network runs ~11 frames/s there)
def test_five_second_clip_on_cpu(engine: Wav2LipEngine) -> None:
    """A whole 5-second sample (face_5.mp4, 122 frames) renders on this machine's device."""
    frames, fps = _frames("face_5.mp4", 10_000)
    samples, _ = librosa.load(sample_media("audio_2.wav"), sr=16_000, mono=True)
    features = engine.prepare(AudioClip(samples.astype(np.float32)))
    faces = _track(frames)
    started = time.perf_counter()
    rendered = 0
    for start in range(0, len(frames), engine.batch_size):
        batch = frames[start : start + engine.batch_size]
        out = engine.render(batch, faces[start : start + len(batch)], features, np.arange(start, start + len(batch)), fps)
        assert out.shape == batch.shape
        rendered += len(out)
    elapsed = time.perf_counter() - started
    assert rendered == len(frames) >= 120
    assert engine.describe()["device"] == engine.device
    print(f"\n5 s clip: {rendered} frames in {elapsed:.1f} s ({rendered / elapsed:.1f} frames/s) on {engine.device}")


def _track(frames: np.ndarray) -> list[Face | None]:
    """Faces from the project's tracker when it is present, else a fixed box around face_5's face."""
    try:
        from heygem_daemon.faces.tracker import FaceTracker
    except ImportError:
        return [Face(box=np.array([142.0, 185.0, 384.0, 469.0], dtype=np.float32))] * len(frames)
    track = FaceTracker().track(frames)
    height, width = frames.shape[1:3]
    return [track.face(i, width, height) for i in range(len(frames))]


def test_device_warp_matches_the_opencv_path(checkpoint: Path, features: AudioFeatures) -> None:
    """Crop, resize and blend in torch (the GPU path, forced on the CPU here) give OpenCV's frames:
    within one grey level inside the face box, bit-identical outside it and in frames without a face."""
    config = EngineConfig(device="cpu", models={"wav2lip": checkpoint}, batch_size=16)
    opencv, on_device = Wav2LipEngine(config), Wav2LipEngine(config, device_warp=True)
    assert (opencv.device_warp, on_device.describe()["crop_and_paste"]) == (False, "torch on cpu")
    frames, fps = _frames("face_1.mp4", 4)
    small = Face(box=np.array([300.0, 200.0, 370.0, 260.0], dtype=np.float32))  # grown to 96, not shrunk
    faces = [Face(box=FACE_1_BOX), None, small, Face(box=FACE_1_BOX)]
    expected = opencv.render(frames, faces, features, np.arange(4), fps)
    actual = on_device.render(frames, faces, features, np.arange(4), fps)

    assert (actual.shape, actual.dtype) == (frames.shape, frames.dtype)
    for b, face in enumerate(faces):
        if face is None:
            assert np.array_equal(actual[b], frames[b])
            continue
        box = crop_box(face, frames.shape[2], frames.shape[1])
        assert box is not None
        inside = np.zeros(frames.shape[1:3], dtype=bool)
        inside[box.y0 : box.y1, box.x0 : box.x1] = True
        diff = np.abs(actual[b].astype(int) - expected[b].astype(int))
        assert diff[inside].max() <= 1
        assert diff[inside].mean() < 0.05  # measured 0.007-0.010
        assert np.array_equal(actual[b][~inside], frames[b][~inside])


def test_a_batch_the_gpu_cannot_hold_takes_the_opencv_path(checkpoint: Path, features: AudioFeatures,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Out of GPU memory for the uploaded batch: a warning, and the OpenCV path renders that batch."""
    from structlog.testing import capture_logs

    config = EngineConfig(device="cpu", models={"wav2lip": checkpoint}, batch_size=16)
    opencv, on_device = Wav2LipEngine(config), Wav2LipEngine(config, device_warp=True)

    def no_room(*args: object) -> np.ndarray:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated: no GPU here)")

    monkeypatch.setattr(on_device, "_render_on_device", no_room)
    frames, fps = _frames("face_1.mp4", 2)
    faces = [Face(box=FACE_1_BOX), None]
    with capture_logs() as logs:
        actual = on_device.render(frames, faces, features, np.arange(2), fps)
    assert np.array_equal(opencv.render(frames, faces, features, np.arange(2), fps), actual)
    assert ["device_warp_out_of_memory"] == [e["event"] for e in logs if e["log_level"] == "warning"]


@pytest.mark.parametrize("device_warp", [False, True], ids=["opencv", "torch-crop-paste"])
def test_rendering_in_place_gives_the_frames_a_copy_would_get(checkpoint: Path, features: AudioFeatures,
                                                              device_warp: bool) -> None:
    """in_place=True (the render pass) returns the frames it was given, drawn into exactly as the
    copy is; without it the input stays as it was. Both crop-and-paste paths (the GPU's forced on the CPU)."""
    engine = Wav2LipEngine(EngineConfig(device="cpu", models={"wav2lip": checkpoint}, batch_size=16),
                           device_warp=device_warp)
    frames, fps = _frames("face_1.mp4", 3)
    faces = [Face(box=FACE_1_BOX), None, Face(box=FACE_1_BOX)]
    before = frames.copy()
    copied = engine.render(frames, faces, features, np.arange(3), fps)
    assert np.array_equal(frames, before) and not np.array_equal(copied, before)
    given = frames.copy()
    drawn = engine.render(given, faces, features, np.arange(3), fps, in_place=True)
    assert drawn is given and np.array_equal(drawn, copied)
