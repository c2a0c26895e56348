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
away).  Each video is tracked in segments of 32 frames, each led in by a
fresh detection on the 4 frames before it, so segments can run on worker
processes side by side (``segments.py``, ``workers.py``).

The whole video is tracked before the track is returned, so smoothing is an
offline, centred (zero-phase) filter: it removes landmark jitter without the
lag a causal filter would add to fast lip motion.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from ..logging import get_logger
from .facemesh import FaceMesh
from .segments import InProcess, Runner, SegmentResult, Segmenter
from .track import FaceTrack
from .workers import MeshWorkers

log = get_logger()

#: MediaPipe's face mesh with refinement: 468 mesh points + 2 x 5 iris points
NUM_LANDMARKS = 478
#: Gaussian sigma (frames) of the centred landmark smoothing.  One frame keeps
#: a fast syllable's lip opening while removing the sub-pixel shimmer.
SMOOTH_SIGMA_FRAMES = 1.0
#: names the models and the pipeline in the face-track cache key: change it
#: whenever either changes what the landmarks are (v3: tracked in segments, segments.py; v4: the
#: crop warped from the face's region, which rounds a few of its pixels one level differently)
PIPELINE = "facemesh-attention-v4"


def _litert_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ai-edge-litert")
    except PackageNotFoundError:
        return "unknown"


class FaceTracker:
    """Tracks the most prominent face through one video's frames at a time.

    ``processes`` > 0 tracks each video's segments on that many worker
    processes (``workers.py``); 0 tracks them in the caller's thread.  The
    landmarks are the same either way.  A tracker with processes must be
    ``close``d (or used as a context manager)."""

    def __init__(
        self,
        *,
        max_side: int = 640,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        smooth_sigma: float = SMOOTH_SIGMA_FRAMES,
        processes: int = 0,
    ) -> None:
        self.max_side = max_side
        self._sigma = smooth_sigma
        self._confidence = (min_detection_confidence, min_tracking_confidence)
        # built here, once: a daemon makes its trackers before READY, so no video pays for it
        self._mesh = FaceMesh(min_detection_confidence=min_detection_confidence,
                              min_tracking_confidence=min_tracking_confidence)
        self.processes = processes
        self._workers = self._start_workers() if processes > 0 else None
        self.name = f"litert-{_litert_version()}-{PIPELINE}-s{smooth_sigma:g}"

    def __enter__(self) -> "FaceTracker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker processes, if any (the tracker tracks in-process afterwards)."""
        if self._workers is not None:
            self._workers.close()
            self._workers = None
            self.processes = 0

    def _start_workers(self) -> MeshWorkers:
        detect, track = self._confidence
        return MeshWorkers(self.processes, max_side=self.max_side, min_detection_confidence=detect,
                           min_tracking_confidence=track)

    def segmenter(self) -> Segmenter:
        """A new video's frames → raw landmarks, on the workers when there are any."""
        if self._workers is not None and not self._workers.alive():
            log.warning("tracking_workers_restarted", processes=self.processes)
            self._workers.close()
            self._workers = self._start_workers()
        runner: Runner = self._workers if self._workers is not None else InProcess(self._mesh)
        return Segmenter(runner, self.max_side)

    def track(self, frames: Iterable[np.ndarray]) -> FaceTrack:
        """Track one video's frames (BGR uint8, in order); absent faces get present=False."""
        segmenter = self.segmenter()
        parts: list[SegmentResult] = []
        try:
            for frame in frames:
                segmenter.push(frame)
                parts.extend(segmenter.take())
            segmenter.end()
            parts.extend(segmenter.take(wait=True))
        finally:
            segmenter.close()
        track = assemble(parts, self._sigma, self.name)
        log.debug("tracker_finished", frames=len(track), with_face=track.frames_with_face)
        return track


def assemble(parts: list[SegmentResult], sigma: float, name: str) -> FaceTrack:
    """One track from segments' raw landmarks: stacked, smoothed, with boxes."""
    if parts:
        marks = np.concatenate([part.marks for part in parts])
        present = np.concatenate([part.present for part in parts])
    else:
        marks = np.zeros((0, NUM_LANDMARKS, 2), np.float32)
        present = np.zeros(0, bool)
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
