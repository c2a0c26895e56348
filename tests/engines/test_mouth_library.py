"""The avatar's own mouths: library built and cached by the real pipeline, chosen smoothly, pasted
below the nose only, and left out where the library has no close shape."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest

from heygem_daemon.engines.base import AudioFeatures, EngineConfig
from heygem_daemon.engines.builtin import BuiltinEngine
from heygem_daemon.engines.builtin_exemplar import exemplar_chain, target_gap
from heygem_daemon.engines.builtin_geometry import (CHIN_SHARE, CLOSED_SEAM_IOD, COLUMNS, NOSE_BASE, plan_warp,
                                                   source_gap)
from heygem_daemon.engines.builtin_library import MouthLibrary, column_positions
from heygem_daemon.faces.cache import FaceTrackCache
from heygem_daemon.faces.tracker import FaceTracker
from heygem_daemon.render.mouths import library_path, load_library
from heygem_daemon.jobs.report import OutputReport
from heygem_daemon.render.plan import plan_video
from heygem_daemon.render.video import VideoTask, VideoTools, make_video
from heygem_daemon.jobs.report import Timings
from heygem_daemon.media.audio import decode_audio
from heygem_daemon.settings import LimitSettings, OutputSettings
from heygem_daemon.speech.avatar import AvatarProfile
from heygem_daemon.speech.curve import MouthCurve

from tests.support.media import read_frames, sample_media


@pytest.fixture(scope="module")
def engine() -> BuiltinEngine:
    return BuiltinEngine(EngineConfig(device="cpu"))


@pytest.fixture(scope="module")
def published(engine, tmp_path_factory):
    """face_1.mp4 driven by audio_1.wav through the daemon's per-video pipeline (render/video.py)."""
    work = tmp_path_factory.mktemp("mouths")
    video, audio = sample_media("face_1.mp4"), sample_media("audio_1.wav")
    clip = decode_audio(audio, LimitSettings())
    task = VideoTask(video, audio, clip.duration_s, work / "out.mp4", OutputSettings(), LimitSettings(),
                     work / "spool")
    tools = VideoTools(engine, FaceTracker(), FaceTrackCache(work / "faces"), lambda: None)
    report = OutputReport(video=video.name, audio=audio.name)
    make_video(task, engine.prepare(clip), tools, report)
    return task, tools, report


@pytest.fixture(scope="module")
def library(published) -> MouthLibrary:
    task, tools, _ = published
    found = load_library(library_path(tools, plan_video(task, Timings())))
    assert found is not None
    return found


@pytest.fixture(scope="module")
def clip():
    """12 frames of face_1.mp4 and their faces."""
    frames = read_frames(sample_media("face_1.mp4"), limit=12)
    assert len(frames) == 12
    frames = np.stack(frames)
    track = FaceTracker().track(frames)
    height, width = frames.shape[1:3]
    return frames, [track.face(i, width, height) for i in range(len(frames))]


def _constant(opening: float, seconds: float = 2.0) -> AudioFeatures:
    n = int(seconds * 100)
    curve = MouthCurve(100.0, np.full(n, opening), np.zeros(n), np.zeros(n), voiced=np.ones(n, bool))
    return AudioFeatures(data=curve, duration_s=seconds, source="loudness")


_PROFILE = AvatarProfile(rest_gap=0.01, open_gap=0.12)


def test_report_counts_the_frames_given_the_avatars_own_mouth(published):
    """Through the real pipeline, report.exemplar_frames counts the frames that got a filmed mouth."""
    _, _, report = published
    assert report.exemplar_frames is not None
    assert 0 < report.exemplar_frames <= report.frames == report.frames_with_face


def test_library_is_cached_beside_the_face_track_and_reads_back_whole(published, library):
    """The cache entry lies beside the face track; written and read again, every array is equal."""
    task, tools, _ = published
    path = library_path(tools, plan_video(task, Timings()))
    assert path.parent == tools.track_cache.root and path.stat().st_size > 0
    buffer = io.BytesIO()
    library.write(buffer)
    buffer.seek(0)
    again = MouthLibrary.read(buffer)
    assert library.px_per_iod == again.px_per_iod
    for name in ("crops", "gap", "width", "yaw", "teeth", "knots", "frames"):
        assert np.array_equal(getattr(library, name), getattr(again, name)), name


def test_library_spans_the_filmed_openings_with_aligned_crops(library):
    """Entries reach from a nearly closed to a wide-open mouth; every crop has its lip corners on
    one row through the crop's mouth centre (rotated to the eye line), and its lip contours in order."""
    assert len(library) >= 20
    assert library.gap.min() < 0.03 and library.gap.max() > 0.08
    assert library.crops.dtype == np.uint8 and library.crops.shape[0] == len(library)
    corners = np.abs(column_positions()).argsort()[-2:]  # the outermost columns hold the corners' v
    assert np.abs(library.knots[:, :, corners]).max() < 0.03
    middle = library.knots.shape[2] // 2
    upper_outer, upper_inner, lower_inner, lower_outer = np.moveaxis(library.knots[:, :, middle], 1, 0)
    assert (upper_outer < upper_inner).all() and (lower_inner < lower_outer).all()
    assert np.allclose(lower_inner - upper_inner, library.gap, atol=0.02)


def test_exemplar_choice_moves_smoothly_with_the_opening(library):
    """A target opening sweeping slowly over the library's range changes the mix of exemplars by
    little from one frame to the next: no jumps between unrelated mouths."""
    chain = exemplar_chain(library)
    assert chain is not None and len(chain.entries) >= 3
    sweep = np.linspace(chain.gaps[0], chain.gaps[-1], 250)

    def mix(gap: float) -> np.ndarray:
        weights = np.zeros(len(library))
        for entry, weight in chain.pick(float(gap)):
            weights[entry] += weight
        return weights

    steps = [np.abs(mix(b) - mix(a)).sum() for a, b in zip(sweep, sweep[1:])]
    assert max(steps) <= 0.6
    assert all(abs(sum(w for _, w in chain.pick(float(g))) - 1.0) < 2e-3 for g in sweep)


def _centre(knots: np.ndarray) -> np.ndarray:
    """Knot values at the mouth centre (between the two middle columns)."""
    return knots[..., COLUMNS // 2 - 1:COLUMNS // 2 + 1].mean(axis=-1)


def test_a_closing_mouth_closes_where_the_persons_own_lips_meet(library, clip):
    """Closing far from the filmed opening, all four lip contours go where this person's filmed
    mouths at the target opening have them, relative to the lip corners -- the upper lip too, not
    only the lower lip and jaw -- and the chin follows the lower lip."""
    chain = exemplar_chain(library)
    frames, faces = clip
    filmed = [source_gap(face.landmarks) for face in faces]
    b = int(np.argmax(filmed))
    target = float(chain.gaps[0])
    assert filmed[b] - target > 0.03
    contours, weight = chain.placement(target, filmed[b])
    assert weight == 1.0
    plan = plan_warp(faces[b].landmarks, frames[b], target, 0.0, 0.0, (0.0, 1.0), chain.placement)
    placed, theirs = _centre(plan.out_knots[1:5]) / plan.iod, _centre(contours)
    # the lips never close past the painted seam between them (the warp stays invertible)
    theirs[2] = max(theirs[2], theirs[1] + CLOSED_SEAM_IOD)
    assert np.allclose(placed, theirs, atol=0.5 / plan.iod)
    generic = plan_warp(faces[b].landmarks, frames[b], target, 0.0, 0.0, (0.0, 1.0))
    assert abs(_centre(plan.out_knots[1]) - _centre(generic.out_knots[1])) > 1.0  # px: the upper lip was placed
    lower_moved = _centre(plan.out_knots[4] - plan.src_knots[4])
    assert _centre(plan.out_knots[5] - plan.src_knots[5]) == pytest.approx(CHIN_SHARE * lower_moved, abs=0.5)


def test_a_closing_mouth_follows_the_target_opening_without_steps(library, clip):
    """Between two of the library's levels the lips are interpolated, not switched: a target sweeping
    down over the library's openings gets exactly that inner-lip gap, in every frame."""
    chain = exemplar_chain(library)
    frames, faces = clip
    filmed = [source_gap(face.landmarks) for face in faces]
    b = int(np.argmax(filmed))
    sweep = np.linspace(max(chain.gaps[0], CLOSED_SEAM_IOD), filmed[b] - 0.02, 60)
    gaps = []
    for target in sweep:
        plan = plan_warp(faces[b].landmarks, frames[b], float(target), 0.0, 0.0, (0.0, 1.0), chain.placement)
        gaps.append(target_gap(plan)[0])
    assert np.allclose(gaps, sweep, atol=2e-3)


def test_an_opening_mouth_keeps_the_generic_move(library, clip):
    """Opening, the lower lip and jaw move as without a library (placing opened lips made the
    rendered opening harder to read against the real speaker)."""
    chain = exemplar_chain(library)
    frames, faces = clip
    filmed = [source_gap(face.landmarks) for face in faces]
    b = int(np.argmin(filmed))
    target = float(chain.gaps[-1])
    placed = plan_warp(faces[b].landmarks, frames[b], target, 0.0, 0.0, (0.0, 1.0), chain.placement)
    generic = plan_warp(faces[b].landmarks, frames[b], target, 0.0, 0.0, (0.0, 1.0))
    assert np.array_equal(placed.out_knots, generic.out_knots)


def test_a_target_at_the_filmed_opening_keeps_the_filmed_lips(library, clip):
    """Where the audio asks for the opening the person already has, nothing moves."""
    chain = exemplar_chain(library)
    frames, faces = clip
    for frame, face in zip(frames, faces):
        gap = source_gap(face.landmarks)
        plan = plan_warp(face.landmarks, frame, gap, 0.0, 0.0, (0.0, 1.0), chain.placement)
        assert np.allclose(plan.out_knots, plan.src_knots, atol=1e-3)


@pytest.mark.parametrize("opening", [1.0, 0.0], ids=["wide open", "closed"])
def test_everything_above_the_nose_is_byte_identical_with_exemplars(engine, library, clip, opening):
    """With the library on and a wide-open target (exemplars pasted) or a closed one (the upper lip
    placed where the person's closed lips meet, the lip nearest the nose), nothing at or above the
    nose base changes."""
    frames, faces = clip
    features = engine.adapt(_constant(opening), _PROFILE, mouths=library)
    out = engine.render(frames, faces, features, np.arange(len(frames)), 30.0)
    assert features.details["exemplar_frames"] > 0
    for frame, result, face in zip(frames, out, faces):
        marks = face.landmarks
        rows, cols = np.nonzero(np.any(frame != result, axis=2))
        iod = np.linalg.norm(marks[263] - marks[33])
        axis_u = (marks[263] - marks[33]) / iod
        axis_v = np.array([-axis_u[1], axis_u[0]])
        assert ((np.stack([cols, rows], axis=1) - marks[NOSE_BASE]) @ axis_v).min() > 0


def test_exemplars_differ_from_the_painted_interior(engine, library, clip):
    """The same frames with the library switched off get today's paint: the mouths differ."""
    frames, faces = clip
    with_library = engine.render(frames, faces, engine.adapt(_constant(1.0), _PROFILE, mouths=library),
                                 np.arange(len(frames)), 30.0)
    painted = engine.render(frames, faces, engine.adapt(_constant(1.0), _PROFILE), np.arange(len(frames)), 30.0)
    assert not np.array_equal(with_library, painted)


def test_without_a_close_shape_the_painted_mouth_is_kept(engine, library, clip):
    """A library of nearly closed mouths only (a presenter who never opens wide) and a wide-open
    target: no frame gets an exemplar, and the output is today's warp and paint, byte for byte."""
    closed = np.flatnonzero(library.gap < 0.02)
    assert len(closed) >= 2
    narrow = replace(library, crops=library.crops[closed], gap=library.gap[closed], width=library.width[closed],
                     yaw=library.yaw[closed], teeth=library.teeth[closed], knots=library.knots[closed],
                     frames=library.frames[closed])
    frames, faces = clip
    features = engine.adapt(_constant(1.0), _PROFILE, mouths=narrow)
    out = engine.render(frames, faces, features, np.arange(len(frames)), 30.0)
    painted = engine.render(frames, faces, engine.adapt(_constant(1.0), _PROFILE), np.arange(len(frames)), 30.0)
    assert 0 == features.details["exemplar_frames"]
    assert np.array_equal(out, painted)
