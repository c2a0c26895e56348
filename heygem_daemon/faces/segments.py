"""Tracking in fixed segments, so that one video's frames can be tracked on several cores at once.

Tracking is sequential: each frame's face region comes from the previous
frame's landmarks, so a single video ran on one core whatever the machine
(120 frames/s on a 16-core server, the pipeline's limit; docs/tracking.md).
Here a video is cut into segments of ``SEGMENT_FRAMES``; each starts from a
fresh detection on the ``WARMUP_FRAMES`` frames before it (whose results are
dropped), so segments are independent and can run side by side.  The
warm-up matters: a region from a detection lands ~0.5-1.4 px from the
tracked one, and each tracked frame halves that (measured on face_1, face_4
and talk_en_40s: 0.03-0.07 px after four frames, the size of LiteRT's own
rounding against mediapipe's).

The cut points depend only on the frame numbers, never on how many
processes run the segments, so a track (and the cache entry made from it) is
the same in-process and on any number of workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import MutableSequence, Protocol

import cv2
import numpy as np

from .facemesh import NUM_LANDMARKS, FaceMesh, exact_shrink

#: frames tracked from one fresh detection; also how far tracking may run behind the decode
SEGMENT_FRAMES = 32
#: frames tracked before a segment and dropped, so its first region is a tracked one
WARMUP_FRAMES = 4
#: the render pass holds every frame whose segment is still being tracked: at most this many
#: bytes of them (at 720p five segments in flight, at 1080p two, at 4K one)
IN_FLIGHT_BYTES = 512 * 1024 * 1024


#: where a segment's frames are put: shared memory (worker processes) or a list of the frames
FrameSlot = MutableSequence[np.ndarray] | np.ndarray


@dataclass
class SegmentResult:
    """One segment's raw landmarks, normalised to the frame."""

    #: (n, 478, 2) float32, NaN where no face
    marks: np.ndarray
    #: (n,) bool
    present: np.ndarray


def track_segment(mesh: FaceMesh, frames: FrameSlot, warm: int, shrink: int = 1) -> SegmentResult:
    """Landmarks of ``frames[warm:]`` (BGR), the first ``warm`` frames only leading in.

    ``shrink``: the frames are that many times the tracked size (``FaceMesh.process``);
    1: they were downscaled already."""
    mesh.close()
    try:
        for frame in frames[:warm]:
            mesh.process(frame, shrink)
        count = len(frames) - warm
        marks = np.full((count, NUM_LANDMARKS, 2), np.nan, dtype=np.float32)
        present = np.zeros(count, dtype=bool)
        for index in range(count):
            frame = frames[warm + index]
            points = mesh.process(frame, shrink)
            if points is not None:
                height, width = frame.shape[0] // shrink, frame.shape[1] // shrink
                marks[index] = (points / np.array([width, height], np.float32)).astype(np.float32)
                present[index] = True
        return SegmentResult(marks, present)
    finally:
        mesh.close()


def downscale(frame: np.ndarray, max_side: int) -> np.ndarray:
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


class Runner(Protocol):
    """Runs segments: in this process, or on worker processes (``workers.MeshWorkers``)."""

    def fits(self, shape: tuple[int, int, int], count: int) -> bool:
        """Whether a slot takes ``count`` frames of ``shape``."""

    def slot(self, shape: tuple[int, int, int], count: int) -> FrameSlot:
        """Room for the next segment's ``count`` frames of ``shape``, filled by index."""

    def submit(self, count: int, warm: int, in_flight: int, shrink: int) -> None:
        """Track the ``count`` frames put in the last slot (``shrink``: ``track_segment``); waits
        while ``in_flight`` segments are being tracked (or every worker is busy)."""

    def lead(self, frames: FrameSlot) -> list[np.ndarray]:
        """The last submitted segment's last ``frames``, kept until the next slot is filled from them."""

    def results(self, wait: bool) -> list[SegmentResult]:
        """Finished segments in submission order: those done now, or (``wait``) all."""

    def drain(self) -> None:
        """Forget segments still running (a video stopped early)."""


class InProcess:
    """Segments tracked at once, in the caller's thread.

    Its slot holds the caller's frames themselves, not copies (a 720p frame's copy
    cost a tenth of its tracking): a segment is tracked as soon as its last frame
    is pushed, and the caller does not change a frame before its face is final."""

    def __init__(self, mesh: FaceMesh) -> None:
        self._mesh = mesh
        self._frames: list[np.ndarray] = []
        self._lead = np.empty(0, np.uint8)
        self._done: list[SegmentResult] = []

    def fits(self, shape: tuple[int, int, int], count: int) -> bool:
        return True

    def slot(self, shape: tuple[int, int, int], count: int) -> FrameSlot:
        self._frames = [np.empty(0, np.uint8)] * count
        return self._frames

    def submit(self, count: int, warm: int, in_flight: int, shrink: int) -> None:
        frames, self._frames = self._frames[:count], []
        self._done.append(track_segment(self._mesh, frames, warm, shrink))

    def lead(self, frames: FrameSlot) -> list[np.ndarray]:
        # copies (the caller may change a frame once its face is final), into one buffer kept
        # between segments: a fresh 720p copy cost five times a reused one (page faults)
        if len(frames) == 0:
            return []
        shape = (WARMUP_FRAMES, *frames[0].shape)
        if self._lead.shape != shape:
            self._lead = np.empty(shape, np.uint8)
        for index, frame in enumerate(frames):
            self._lead[index] = frame
        return list(self._lead[: len(frames)])

    def results(self, wait: bool) -> list[SegmentResult]:
        done, self._done = self._done, []
        return done

    def drain(self) -> None:
        self._done = []


class Segmenter:
    """One video's frames in order → raw landmarks in order, one segment at a time."""

    def __init__(self, runner: Runner, max_side: int) -> None:
        self._runner = runner
        self._max_side = max_side
        self._lead: list[np.ndarray] = []  # the previous segment's last frames: the next one's warm-up
        self._filled = 0
        self._slot: FrameSlot | None = None
        self._shape: tuple[int, int, int] | None = None
        self._in_flight = 1
        self._shrink = 0
        self.pushed = 0

    def push(self, frame: np.ndarray) -> None:
        """The video's next frame; it must stay unchanged until its segment is tracked."""
        if self.pushed == 0:
            # the caller keeps each frame until its face is final: bound those frames in bytes
            self._in_flight = max(1, IN_FLIGHT_BYTES // (SEGMENT_FRAMES * frame.nbytes))
            # frames the runner can take whole are shrunk around the face only, on the runner;
            # others are shrunk whole here (the same bytes either way: facemesh.exact_shrink)
            shape = (int(frame.shape[0]), int(frame.shape[1]), int(frame.shape[2]))
            self._shrink = exact_shrink(shape, self._max_side)
            if self._shrink > 1 and not self._runner.fits(shape, WARMUP_FRAMES + SEGMENT_FRAMES):
                self._shrink = 0
        small = frame if self._shrink else downscale(frame, self._max_side)
        if self._slot is None:
            self._open(small.shape)
        assert self._slot is not None
        self._slot[len(self._lead) + self._filled] = small
        self._filled += 1
        self.pushed += 1
        if self._filled == SEGMENT_FRAMES:
            self._submit()

    def end(self) -> None:
        if self._filled:
            self._submit()

    def take(self, wait: bool = False) -> list[SegmentResult]:
        """Segments finished since the last call, in order; ``wait``: all of them (after ``end``)."""
        return self._runner.results(wait)

    def close(self) -> None:
        """Drop whatever is still being tracked; the runner is ready for another video."""
        self._slot = None
        self._runner.drain()

    def _open(self, shape: tuple[int, ...]) -> None:
        if self._shape is not None and shape != self._shape:
            raise ValueError(f"frame size changed mid-video: {shape} after {self._shape}")
        self._shape = (int(shape[0]), int(shape[1]), int(shape[2]))
        self._slot = self._runner.slot(self._shape, len(self._lead) + SEGMENT_FRAMES)
        for index, frame in enumerate(self._lead):
            self._slot[index] = frame

    def _submit(self) -> None:
        assert self._slot is not None
        warm, count = len(self._lead), len(self._lead) + self._filled
        tail = self._slot[max(warm, count - WARMUP_FRAMES):count]
        self._runner.submit(count, warm, self._in_flight, max(1, self._shrink))
        self._lead = self._runner.lead(tail)
        self._slot, self._filled = None, 0
