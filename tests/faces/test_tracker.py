"""FaceTracker on a real face: accuracy under known transforms, no-face frames, smoothing."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from heygem_daemon.faces.tracker import NUM_LANDMARKS, FaceTracker
from tests.support.media import read_frames, sample_media


@pytest.fixture(scope="module")
def tracker() -> FaceTracker:
    return FaceTracker()


def _landmarks(tracker: FaceTracker, frame: np.ndarray) -> np.ndarray:
    height, width = frame.shape[:2]
    face = tracker.track([frame]).face(0, width, height)
    assert face is not None
    return face.landmarks


@pytest.mark.parametrize(
    ("dx", "dy", "scale"),
    [(40.0, -30.0, 1.0), (0.0, 0.0, 0.8), (-50.0, 20.0, 1.2), (60.0, 60.0, 0.7)],
)
def test_landmarks_follow_a_known_shift_and_scale(tracker, face_1_frames, dx, dy, scale):
    """Shifting/scaling a real frame moves the landmarks the same way, within ~2 px at 700 px."""
    frame = face_1_frames[10]
    height, width = frame.shape[:2]
    base = _landmarks(tracker, frame)
    matrix = np.float32(
        [[scale, 0, dx + (1 - scale) * width / 2], [0, scale, dy + (1 - scale) * height / 2]]
    )
    moved = cv2.warpAffine(frame, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)
    expected = base @ matrix[:, :2].T + matrix[:, 2]
    error = np.linalg.norm(_landmarks(tracker, moved) - expected, axis=1)
    assert np.median(error) < 1.5
    assert np.percentile(error, 95) < 3.5


def test_landmarks_are_resolution_independent(tracker, face_1_frames):
    """A frame upscaled 2x (tracked downscaled to max_side) gives 2x the pixel landmarks."""
    frame = face_1_frames[10]
    big = cv2.resize(frame, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC)
    error = np.linalg.norm(_landmarks(tracker, big) - 2.0 * _landmarks(tracker, frame), axis=1)
    assert np.median(error) < 1.5


def test_non_square_frame_keeps_landmarks_in_place(tracker, face_1_frames):
    """Padding the frame on the left (non-square) shifts landmarks by exactly the padding."""
    frame = face_1_frames[10]
    wide = cv2.copyMakeBorder(frame, 0, 0, 200, 0, cv2.BORDER_REPLICATE)
    error = np.linalg.norm(_landmarks(tracker, wide) - (_landmarks(tracker, frame) + [200, 0]), axis=1)
    assert np.median(error) < 1.5


def test_frames_without_a_face_are_marked_absent(tracker, face_1_frames):
    """A black frame between faces is present=False with NaN box; tracking resumes after it."""
    frame = face_1_frames[0]
    track = tracker.track([frame, np.zeros_like(frame), frame])
    assert track.present.tolist() == [True, False, True]
    assert np.isnan(track.boxes[1]).all()
    assert track.face(1, frame.shape[1], frame.shape[0]) is None
    assert track.frames_with_face == 2


def test_track_is_compact_normalised_and_smooth(tracker, face_1_frames):
    """The track holds float32 normalised 478-point landmarks with sub-pixel frame-to-frame jitter."""
    track = tracker.track(face_1_frames[:40])
    assert track.landmarks.shape == (40, NUM_LANDMARKS, 2)
    assert track.landmarks.dtype == np.float32
    assert track.present.all()
    assert 0.0 < np.nanmin(track.landmarks) and np.nanmax(track.landmarks) < 1.0
    # Rigid points (forehead, nose bridge, eye corners) barely move in this talking-head clip;
    # their second difference measures jitter.
    rigid = track.landmarks[:, [10, 168, 6, 33, 263], :] * 700
    jitter = np.abs(np.diff(rigid, n=2, axis=0)).mean()
    assert jitter < 0.5
    box = track.boxes[0]
    assert box[0] < box[2] and box[1] < box[3]


def test_name_identifies_the_tracker_version():
    """The cache-key name names the runtime, its version and the pipeline, and changes with smoothing."""
    assert FaceTracker().name.startswith("litert-2.")
    assert "-facemesh-attention-v4-" in FaceTracker().name
    assert FaceTracker(smooth_sigma=2).name != FaceTracker().name


def test_a_tracker_reused_for_another_video_tracks_it_as_a_fresh_one_would(face_1_frames):
    """The mesh is built once per tracker (it costs ~0.8 s), but nothing of one video's
    tracking reaches the next: the second video's track equals a fresh tracker's."""
    other = read_frames(sample_media("face_2.mp4"), limit=30)
    reused = FaceTracker()
    reused.track(face_1_frames)
    second = reused.track(other)
    fresh = FaceTracker().track(other)
    assert second.frames_with_face == fresh.frames_with_face == len(other)
    assert np.array_equal(second.present, fresh.present)
    assert np.array_equal(second.landmarks, fresh.landmarks)
