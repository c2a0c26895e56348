"""BuiltinEngine on a real face: pass-through, containment, mouth follows the target."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from heygem_daemon.engines.base import AudioClip, AudioFeatures, Engine, EngineConfig
from heygem_daemon.engines.builtin import BuiltinEngine
from heygem_daemon.engines.builtin_geometry import NOSE_BASE, source_gap
from heygem_daemon.errors import EngineError
from heygem_daemon.faces.tracker import FaceTracker
from heygem_daemon.speech.curve import MouthCurve

from tests.support.media import read_frames, sample_media


@pytest.fixture(scope="module")
def clip():
    """12 frames of face_1.mp4 and their face track."""
    frames = read_frames(sample_media("face_1.mp4"), limit=12)
    assert len(frames) == 12
    frames = np.stack(frames)
    return frames, FaceTracker().track(frames)


@pytest.fixture(scope="module")
def engine() -> BuiltinEngine:
    return BuiltinEngine(EngineConfig(device="cpu"))


def _constant(opening: float, seconds: float = 2.0) -> AudioFeatures:
    n = int(seconds * 100)
    curve = MouthCurve(100.0, np.full(n, opening), np.zeros(n), np.zeros(n), voiced=np.ones(n, bool))
    return AudioFeatures(data=curve, duration_s=seconds, source="loudness")


def _faces(clip):
    frames, track = clip
    height, width = frames.shape[1:3]
    return [track.face(i, width, height) for i in range(len(frames))]


def test_implements_the_engine_protocol(engine):
    """BuiltinEngine satisfies the Engine protocol and reports its device."""
    assert isinstance(engine, Engine)
    assert engine.name == "builtin" and engine.device == "cpu"


def test_frames_without_a_face_come_back_byte_identical(engine, clip):
    """A black frame and a frame whose face is None pass through unchanged."""
    frames, _ = clip
    batch = np.stack([np.zeros_like(frames[0]), frames[3]])
    out = engine.render(batch, [None, None], _constant(1.0), np.array([0, 1]), 30.0)
    assert out.dtype == np.uint8 and out.shape == batch.shape
    assert np.array_equal(out, batch)


def test_only_the_lower_face_changes(engine, clip):
    """Pixels above the nose base (across the face's axis) are exactly equal; changes stay in the lower face."""
    frames, _ = clip
    faces = _faces(clip)
    out = engine.render(frames, faces, _constant(1.0), np.arange(len(frames)), 30.0)
    for frame, result, face in zip(frames, out, faces):
        marks = face.landmarks
        changed = np.any(frame != result, axis=2)
        assert changed.any()
        rows, cols = np.nonzero(changed)
        iod = np.linalg.norm(marks[263] - marks[33])
        axis_u = (marks[263] - marks[33]) / iod
        axis_v = np.array([-axis_u[1], axis_u[0]])
        below_nose = (np.stack([cols, rows], axis=1) - marks[NOSE_BASE]) @ axis_v
        assert below_nose.min() > 0
        assert rows.min() > marks[NOSE_BASE, 1] - 0.05 * iod
        assert rows.max() < marks[152, 1] + 0.45 * iod
        jaw_x = marks[[132, 361], 0]
        assert cols.min() >= jaw_x.min() - 0.1 * iod and cols.max() <= jaw_x.max() + 0.1 * iod


def _measured_gaps(frames: np.ndarray) -> np.ndarray:
    track = FaceTracker(smooth_sigma=0).track(frames)
    height, width = frames.shape[1:3]
    return np.array([source_gap(track.face(i, width, height).landmarks) for i in range(len(frames))])


def test_mouth_opens_and_closes_to_the_target(engine, clip):
    """Re-tracking the output: target 0 gives a closed mouth, target 1 a wide-open one."""
    frames, _ = clip
    faces = _faces(clip)
    index = np.arange(len(frames))
    closed = _measured_gaps(engine.render(frames, faces, _constant(0.0), index, 30.0))
    opened = _measured_gaps(engine.render(frames, faces, _constant(1.0), index, 30.0))
    source = _measured_gaps(frames)
    assert closed.mean() < 0.02 and closed.max() < 0.04
    assert opened.min() > 0.12
    assert opened.mean() > source.mean() + 0.05


def test_prepare_reports_the_source_and_duration(engine, clip):
    """prepare() returns a mouth curve covering the audio, source "loudness" without transcript."""
    rng = np.random.default_rng(0)
    samples = (0.1 * rng.standard_normal(16_000)).astype(np.float32)
    features = engine.prepare(AudioClip(samples))
    assert features.source == "loudness"
    assert features.duration_s == pytest.approx(1.0)
    assert isinstance(features.data, MouthCurve) and len(features.data.open) == 100


def test_foreign_features_are_an_engine_error(engine, clip):
    """Features from another engine are refused with a readable error."""
    frames, _ = clip
    with pytest.raises(EngineError):
        engine.render(frames[:1], [None], AudioFeatures(data=object(), duration_s=1.0), np.array([0]), 30.0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_unavailable_gpu_is_a_readable_error():
    """Asking for cuda:0 on a machine without a GPU is an EngineError; "auto" falls back to CPU."""
    with pytest.raises(EngineError, match="no CUDA GPU is usable"):
        BuiltinEngine(EngineConfig(device="cuda:0"))
    assert BuiltinEngine(EngineConfig(device="auto")).device == "cpu"


def test_large_batches_are_split_without_changing_the_result(engine, clip, monkeypatch):
    """Splitting a batch to bound memory gives the same frames (up to float rounding: +-1 level)."""
    from heygem_daemon.engines import builtin_warp

    frames, _ = clip
    faces = _faces(clip)
    index = np.arange(len(frames))
    whole = engine.render(frames, faces, _constant(0.8), index, 30.0)
    monkeypatch.setattr(builtin_warp, "_MAX_PIXELS", 1)
    split = engine.render(frames, faces, _constant(0.8), index, 30.0)
    diff = np.abs(whole.astype(int) - split.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_the_moved_lower_face_keeps_its_fine_detail(engine, clip, monkeypatch):
    """Opening the mouth moves the chin by fractions of a pixel; the moved skin stays about as detailed.

    Pixel-fine grain (the hardest case: all its detail is at the finest
    scale) is laid over the real face, so any softening of the moved region
    shows in its Laplacian.  Plain bilinear sampling keeps 20-30 % of it; the
    engine gives back the detail the sampling took.
    """
    import cv2

    import heygem_daemon.engines.builtin_warp as warp

    frames, _ = clip
    faces = _faces(clip)
    grain = np.random.default_rng(0).normal(0.0, 20.0, frames.shape[:3])[..., None]
    grainy = np.clip(frames + grain, 0, 255).astype(np.uint8)

    def detail(img: np.ndarray, box: tuple[slice, slice]) -> float:
        grey = cv2.cvtColor(img[box], cv2.COLOR_BGR2GRAY).astype(np.float64)
        return float(cv2.Laplacian(grey, cv2.CV_64F).var())

    def kept(out: np.ndarray) -> float:
        ratios = []
        for before, after, face in zip(grainy, out, faces):
            m = face.landmarks
            iod = np.linalg.norm(m[263] - m[33])
            # between the lower lip and the chin, inside the mouth corners: skin that moved down
            box = (slice(int(m[17, 1] + 0.15 * iod), int(m[152, 1])), slice(int(m[61, 0]), int(m[291, 0])))
            ratios.append(detail(after, box) / detail(before, box))
        return float(np.mean(ratios))

    restored = kept(engine.render(grainy, faces, _constant(0.6), np.arange(len(frames)), 30.0))
    monkeypatch.setattr(warp, "DETAIL_RESTORE", 0.0)
    plain = kept(engine.render(grainy, faces, _constant(0.6), np.arange(len(frames)), 30.0))
    assert plain < 0.4  # the softening this guards against is real
    assert restored > 0.5 and restored > 1.8 * plain


def test_rendering_in_place_draws_the_same_pixels_into_the_frames_given(engine, clip):
    """in_place=True (what the render pass asks, saving a copy of every batch) returns the frames
    it was given, drawn into exactly as a copy would be; without it the input is left as it was."""
    frames, _ = clip
    faces, index = _faces(clip), np.arange(len(frames))
    before = frames.copy()
    copied = engine.render(frames, faces, _constant(0.8), index, 30.0)
    assert np.array_equal(frames, before) and not np.array_equal(copied, before)
    given = frames.copy()
    drawn = engine.render(given, faces, _constant(0.8), index, 30.0, in_place=True)
    assert drawn is given
    assert np.array_equal(drawn, copied)


def test_the_same_voice_in_a_later_job_is_not_recognised_again(tmp_path):
    """With a cache folder (the daemon's), a voice's phones are kept by its content: a later engine
    (a retry, another batch of avatars, a restarted daemon) gets the same mouth curve without the
    recogniser; other audio, or the same file cut to another length, is recognised."""
    from heygem_daemon.media.audio import decode_audio
    from heygem_daemon.settings import LimitSettings

    voice = decode_audio(sample_media("audio_1.wav"), LimitSettings())
    other = decode_audio(sample_media("audio_2.wav"), LimitSettings())
    calls: list[int] = []

    def counted(made: BuiltinEngine) -> BuiltinEngine:
        recognise = made.phones.recognise
        made.phones.recognise = lambda samples, rate: calls.append(len(samples)) or recognise(samples, rate)
        return made

    first_engine = counted(BuiltinEngine(EngineConfig(device="cpu", cache_dir=tmp_path)))
    later_engine = counted(BuiltinEngine(EngineConfig(device="cpu", cache_dir=tmp_path)))
    try:
        first = first_engine.prepare(voice)
        later = later_engine.prepare(voice)
        assert len(calls) == 1 and first.source == later.source == "phones:pocketsphinx"
        assert (first.details["phones_cached"], later.details["phones_cached"]) == (False, True)
        assert np.array_equal(first.data.open, later.data.open) and np.array_equal(first.data.width, later.data.width)
        later_engine.prepare(other)
        cut = AudioClip(voice.samples[: len(voice.samples) // 2], voice.sample_rate, digest=voice.digest)
        later_engine.prepare(cut)
        assert calls == [len(voice.samples), len(other.samples), len(cut.samples)]
    finally:
        first_engine.phones.close()
        later_engine.phones.close()
