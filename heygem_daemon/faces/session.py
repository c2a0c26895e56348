"""Tracking inside the render pass: one decode serves tracking and rendering.

``FaceTracker.track`` needs the whole video before it returns; on a cold cache
that meant a second decode and a tracking pass no other stage could overlap.
A session is fed frames as they are decoded and hands back smoothed faces a
little later: the centred smoothing only looks ``radius`` frames ahead, so
frame i is final once frame i + radius has been tracked (or the video ended);
frames are tracked a segment at a time, so that is up to a few segments after
they were pushed.
"""

from __future__ import annotations

import contextlib

import numpy as np

from .segments import SEGMENT_FRAMES, SegmentResult, Segmenter
from .track import FaceTrack
from .tracker import NUM_LANDMARKS, FaceTracker, _boxes, smooth_segments


#: frames smoothed at a time when the whole track is assembled
_RESULT_BLOCK = 512


class TrackingSession(contextlib.AbstractContextManager):
    """Feed source frames in order with ``push``; read smoothed faces with ``window``.

    Frames are tracked a segment at a time (``segments.py``), on the tracker's
    worker processes when it has them, so a frame's raw landmarks arrive up to
    a few segments after it was pushed; ``final_until`` says how far they have."""

    def __init__(self, tracker: FaceTracker) -> None:
        self._tracker = tracker
        self._segmenter: Segmenter | None = tracker.segmenter()
        self._parts: list[SegmentResult] = []
        self._tracked = 0
        self._sigma = tracker._sigma
        self.radius = int(np.ceil(3 * self._sigma)) if self._sigma > 0 else 0
        self.ended = False

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._segmenter is not None:
            self._segmenter.close()
            self._segmenter = None

    @property
    def count(self) -> int:
        """Frames pushed so far."""
        return self._segmenter.pushed if self._segmenter is not None else self._tracked

    def push(self, frame: np.ndarray) -> None:
        assert self._segmenter is not None, "push after close"
        self._segmenter.push(frame)
        self._collect(wait=False)

    def end(self) -> None:
        """No more frames: waits for the last segments; the last ``radius`` frames become final."""
        if self._segmenter is not None and not self.ended:
            self._segmenter.end()
            self._collect(wait=True)
        self.ended = True

    def _collect(self, wait: bool) -> None:
        assert self._segmenter is not None
        for part in self._segmenter.take(wait):
            self._parts.append(part)
            self._tracked += len(part.present)

    def final_until(self) -> int:
        """Frames [0, n) have their final smoothed value."""
        if self._segmenter is not None and not self.ended:
            self._collect(wait=False)
        return self._tracked if self.ended else max(0, self._tracked - self.radius)

    def _raw(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """Raw landmarks and presence of tracked frames [lo, hi)."""
        first, last = lo // SEGMENT_FRAMES, (hi - 1) // SEGMENT_FRAMES
        parts = self._parts[first:last + 1]
        offset = first * SEGMENT_FRAMES
        marks = np.concatenate([p.marks for p in parts])[lo - offset:hi - offset]
        present = np.concatenate([p.present for p in parts])[lo - offset:hi - offset]
        return marks, present

    def window(self, start: int, stop: int) -> FaceTrack:
        """Smoothed track of source frames [start, stop) (all must be final).

        Smoothing a slice with ``radius`` frames of context on each side gives
        exactly the values of smoothing the whole video."""
        if stop > self.final_until():
            raise ValueError(f"frames up to {stop} are not final yet ({self.final_until()})")
        lo, hi = max(0, start - self.radius), min(self._tracked, stop + self.radius)
        raw, present_all = self._raw(lo, hi)
        marks = smooth_segments(raw, present_all, self._sigma)
        sub = slice(start - lo, stop - lo)
        present = present_all[sub]
        return FaceTrack(boxes=_boxes(marks[sub], present), landmarks=marks[sub], present=present,
                         tracker=self._tracker.name)

    def result(self) -> FaceTrack:
        """The whole track, as ``FaceTracker.track`` would have returned it (for the cache).

        Smoothed block by block (each with its context) into preallocated float32
        arrays: smoothing a 10-minute track in one piece took ~0.5 GB of float64
        temporaries at the end of the video."""
        count = self._tracked
        boxes = np.full((count, 4), np.nan, dtype=np.float32)
        marks = np.full((count, NUM_LANDMARKS, 2), np.nan, dtype=np.float32)
        present = np.zeros(count, dtype=bool)
        for start in range(0, count, _RESULT_BLOCK):
            stop = min(count, start + _RESULT_BLOCK)
            block = self.window(start, stop)
            boxes[start:stop], marks[start:stop], present[start:stop] = block.boxes, block.landmarks, block.present
        return FaceTrack(boxes=boxes, landmarks=marks, present=present, tracker=self._tracker.name)
