"""Tracking inside the render pass: one decode serves tracking and rendering.

``FaceTracker.track`` needs the whole video before it returns; on a cold cache
that meant a second decode and a tracking pass no other stage could overlap.
A session is fed frames as they are decoded and hands back smoothed faces a
few frames later: the centred smoothing only looks ``radius`` frames ahead, so
frame i is final once frame i + radius has been seen (or the video ended).
"""

from __future__ import annotations

import contextlib

import numpy as np

from .track import FaceTrack
from .tracker import NUM_LANDMARKS, FaceTracker, _assemble, smooth_segments


#: frames smoothed at a time when the whole track is assembled
_RESULT_BLOCK = 512


class TrackingSession(contextlib.AbstractContextManager):
    """Feed source frames in order with ``push``; read smoothed faces with ``face``."""

    def __init__(self, tracker: FaceTracker) -> None:
        self._tracker = tracker
        self._mesh = tracker._open_mesh()
        self._raw: list[np.ndarray | None] = []
        self._sigma = tracker._sigma
        self.radius = int(np.ceil(3 * self._sigma)) if self._sigma > 0 else 0
        self.ended = False

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None

    @property
    def count(self) -> int:
        return len(self._raw)

    def push(self, frame: np.ndarray) -> None:
        self._raw.append(self._tracker._landmarks(self._mesh, frame))

    def end(self) -> None:
        """No more frames: the last ``radius`` frames become final."""
        self.ended = True

    def final_until(self) -> int:
        """Frames [0, n) have their final smoothed value."""
        return self.count if self.ended else max(0, self.count - self.radius)

    def window(self, start: int, stop: int) -> FaceTrack:
        """Smoothed track of source frames [start, stop) (all must be final).

        Smoothing a slice with ``radius`` frames of context on each side gives
        exactly the values of smoothing the whole video."""
        if stop > self.final_until():
            raise ValueError(f"frames up to {stop} are not final yet ({self.final_until()})")
        lo, hi = max(0, start - self.radius), min(self.count, stop + self.radius)
        block = _assemble(self._raw[lo:hi], 0.0, self._tracker.name)
        marks = smooth_segments(block.landmarks, block.present, self._sigma)
        sub = slice(start - lo, stop - lo)
        present = block.present[sub]
        boxes = np.full((stop - start, 4), np.nan, dtype=np.float32)
        if present.any():
            pts = marks[sub][present]
            boxes[present] = np.concatenate([pts.min(axis=1), pts.max(axis=1)], axis=1)
        return FaceTrack(boxes=boxes, landmarks=marks[sub], present=present, tracker=self._tracker.name)

    def result(self) -> FaceTrack:
        """The whole track, as ``FaceTracker.track`` would have returned it (for the cache).

        Smoothed block by block (each with its context) into preallocated float32
        arrays: smoothing a 10-minute track in one piece took ~0.5 GB of float64
        temporaries at the end of the video."""
        count = self.count
        boxes = np.full((count, 4), np.nan, dtype=np.float32)
        marks = np.full((count, NUM_LANDMARKS, 2), np.nan, dtype=np.float32)
        present = np.zeros(count, dtype=bool)
        for start in range(0, count, _RESULT_BLOCK):
            stop = min(count, start + _RESULT_BLOCK)
            block = self.window(start, stop)
            boxes[start:stop], marks[start:stop], present[start:stop] = block.boxes, block.landmarks, block.present
        return FaceTrack(boxes=boxes, landmarks=marks, present=present, tracker=self._tracker.name)
