"""Face tracking: MediaPipe's face-mesh models on LiteRT, 478 landmarks per frame, smoothed.

The models (face detector, attention face mesh) ship inside the package and
run on ``ai-edge-litert``, Google's maintained TFLite runtime, which has wheels
for CPython 3.11-3.13 and numpy 2 (``facemesh.py`` holds the pipeline,
``attention.py`` the mesh's custom operators).  Until 2026-11 the tracker ran
the same models through mediapipe 0.10.21, the last release whose wheel
carried them; that release pinned numpy<2 and has no Python 3.13 wheel
(docs/tracking.md compares the two: same landmarks to ~0.1 px).  Tracking runs in video
mode: the face found in one frame gives the next frame's region, and the
detector runs again whenever the mesh loses the face (a cut, a head turned
away).

The whole video is tracked before the track is returned, so smoothing is an
offline, centred (zero-phase) filter: it removes landmark jitter without the
lag a causal filter would add to fast lip motion.
"""

from __future__ import annotations

from typing import Iterable

import cv2
import numpy as np

from ..logging import get_logger
from .facemesh import FaceMesh
from .track import FaceTrack

log = get_logger()

#: MediaPipe's face mesh with refinement: 468 mesh points + 2 x 5 iris points
NUM_LANDMARKS = 478
#: Gaussian sigma (frames) of the centred landmark smoothing.  One frame keeps
#: a fast syllable's lip opening while removing the sub-pixel shimmer.
SMOOTH_SIGMA_FRAMES = 1.0
#: names the models and the pipeline in the face-track cache key: change it
#: whenever either changes what the landmarks are
PIPELINE = "facemesh-attention-v2"


def _litert_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ai-edge-litert")
    except PackageNotFoundError:
        return "unknown"


class FaceTracker:
    """Tracks the most prominent face through one video's frames."""

    def __init__(
        self,
        *,
        max_side: int = 640,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        smooth_sigma: float = SMOOTH_SIGMA_FRAMES,
    ) -> None:
        self.max_side = max_side
        self._sigma = smooth_sigma
        # built here, once: a daemon makes its trackers before READY, so no video pays for it
        self._mesh = FaceMesh(min_detection_confidence=min_detection_confidence,
                              min_tracking_confidence=min_tracking_confidence)
        self.name = f"litert-{_litert_version()}-{PIPELINE}-s{smooth_sigma:g}"

    def track(self, frames: Iterable[np.ndarray]) -> FaceTrack:
        """Track one video's frames (BGR uint8, in order); absent faces get present=False."""
        raw: list[np.ndarray | None] = []
        with self._open_mesh() as mesh:
            for frame in frames:
                raw.append(self._landmarks(mesh, frame))
        track = _assemble(raw, self._sigma, self.name)
        log.debug("tracker_finished", frames=len(track), with_face=track.frames_with_face)
        return track

    def _open_mesh(self) -> FaceMesh:
        # One mesh per tracker, kept: building the attention mesh's stages costs ~0.8 s
        # (a sixth of a short video's whole job). Its only per-video state, the region
        # tracked from frame to frame, is cleared here and when a video's ``with`` ends.
        self._mesh.close()
        return self._mesh

    def _landmarks(self, mesh: FaceMesh, frame: np.ndarray) -> np.ndarray | None:
        """Normalised (478, 2) landmarks of one frame, or None when no face is found."""
        small = _downscale(frame, self.max_side)
        points = mesh.process(small)
        if points is None:
            return None
        height, width = small.shape[:2]
        return (points / np.float32([width, height])).astype(np.float32)


def _downscale(frame: np.ndarray, max_side: int) -> np.ndarray:
    """Shrink so the longer side is at most ``max_side``; landmarks are normalised anyway.

    mediapipe's tracker did the same, and the engine's thresholds were set on
    its landmarks: sampling the face from the full frame instead moved the
    landmarks of rendered (warped) mouths by up to 0.01 of the eye distance
    (docs/tracking.md)."""
    height, width = frame.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1.0:
        return frame
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def _assemble(raw: list[np.ndarray | None], sigma: float, name: str) -> FaceTrack:
    """Stack per-frame results into compact arrays, smooth them, derive boxes."""
    count = len(raw)
    present = np.array([r is not None for r in raw], dtype=bool)
    marks = np.full((count, NUM_LANDMARKS, 2), np.nan, dtype=np.float32)
    for index, points in enumerate(raw):
        if points is not None:
            marks[index] = points
    marks = smooth_segments(marks, present, sigma)
    return FaceTrack(boxes=_boxes(marks, present), landmarks=marks, present=present, tracker=name)


def smooth_segments(marks: np.ndarray, present: np.ndarray, sigma: float) -> np.ndarray:
    """Centred Gaussian smoothing along time, within each run of frames with a face.

    Runs are smoothed separately so a cut or a lost face never blends two
    different head positions together.
    """
    if sigma <= 0:
        return marks
    out = marks.copy()
    for start, stop in _runs(present):
        out[start:stop] = _gaussian_time(marks[start:stop], sigma)
    return out


def _runs(present: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index pairs of consecutive True values."""
    padded = np.concatenate([[False], present, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))


def _gaussian_time(block: np.ndarray, sigma: float) -> np.ndarray:
    """Smooth (T, K, 2) along T with edge-renormalised Gaussian weights (no end bias)."""
    length = block.shape[0]
    if length < 2:
        return block
    radius = int(np.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    flat = block.reshape(length, -1).astype(np.float64)
    summed = np.zeros_like(flat)
    weight = np.zeros((length, 1))
    for offset, tap in zip(range(-radius, radius + 1), taps):
        lo, hi = max(0, -offset), min(length, length - offset)
        if lo >= hi:
            continue
        summed[lo:hi] += tap * flat[lo + offset : hi + offset]
        weight[lo:hi] += tap
    return (summed / weight).reshape(block.shape).astype(np.float32)


def _boxes(marks: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Tight normalised boxes around each frame's landmarks; NaN where no face."""
    boxes = np.full((len(present), 4), np.nan, dtype=np.float32)
    if present.any():
        pts = marks[present]
        boxes[present] = np.concatenate([pts.min(axis=1), pts.max(axis=1)], axis=1)
    return boxes
