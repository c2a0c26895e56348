"""Where a render pass gets each frame's face: a cached track, or tracking as frames stream past.

A cached face track (same video content) skips tracking; otherwise the video is tracked
in the decode's own pass and the track is stored for the next job with this avatar.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from ..engines.base import Face
from ..faces.session import TrackingSession
from ..faces.track import FaceTrack
from ..faces.tracker import FaceTracker
from ..logging import get_logger
from .plan import VideoPlan, VideoTools

log = get_logger()


def first_frames_key(plan: VideoPlan, frames: int) -> str:
    """The cache key of a track of this video's first ``frames`` frames (the video goes on after them)."""
    return f"{plan.digest}-first{frames}"


def cached_track(tools: VideoTools, plan: VideoPlan) -> FaceTrack | None:
    """The whole video's track, or (an output that ends before the video) any cached track of
    its first frames long enough: whichever job made it, with whatever length of speech."""
    keys = [plan.digest]
    if plan.n_out < plan.info.frame_count:
        lengths = tools.track_cache.prefixes(plan.digest, tools.tracker.name)
        keys += [first_frames_key(plan, n) for n in lengths if n >= plan.n_out]
    for key in keys:
        track = tools.track_cache.get(key, tools.tracker.name)
        if track is not None:
            log.info("faces_from_cache", frames=len(track), with_face=track.frames_with_face, whole_video=key == plan.digest)
            return track
    return None


def store_track(tools: VideoTools, plan: VideoPlan, faces: "TrackedFaces") -> None:
    track = faces.session_result
    if track is None or len(track) == 0:
        return
    key = plan.digest if faces.whole_video else first_frames_key(plan, len(track))
    tools.track_cache.put(key, tools.tracker.name, track)
    log.info("faces_tracked", frames=len(track), with_face=track.frames_with_face, whole_video=faces.whole_video)


@dataclass
class Batch:
    """Frames on their way through the render pass, with what is known about them."""

    #: (k,) output frame numbers
    outs: NDArray[np.int64]
    #: (k,) the source frame each output frame shows
    srcs: NDArray[np.int64]
    #: (k, H, W, 3) uint8 BGR
    frames: NDArray[np.uint8]
    #: the source's first pass has ended: every source frame was decoded once
    source_done: bool = False
    #: the face in each frame (None: no face); filled in by the face stage
    faces: list[Face | None] = field(default_factory=list)


class FaceSource(Protocol):
    """Where a render pass gets each frame's face: a cached track, or tracking as frames stream past."""

    def feed(self, batch: Batch) -> None:
        """See a batch as it is decoded (in output order)."""

    def ready(self, srcs: NDArray[np.int64]) -> bool:
        """Whether the faces of these source frames are final."""

    def faces(self, srcs: NDArray[np.int64], width: int, height: int) -> list[Face | None]:
        """The final face of each source frame."""

    def finish(self) -> None:
        """No more frames come: every face is final now."""

    def close(self) -> None:
        """Release what the source holds (a tracking session)."""


class CachedFaces:
    def __init__(self, track: FaceTrack) -> None:
        self.track = track

    def feed(self, batch: Batch) -> None:
        pass

    def ready(self, srcs: NDArray[np.int64]) -> bool:
        return True

    def faces(self, srcs: NDArray[np.int64], width: int, height: int) -> list[Face | None]:
        return [self.track.face(int(s), width, height) for s in srcs]

    def finish(self) -> None:
        pass

    def close(self) -> None:
        pass


class TrackedFaces:
    """Tracks first-visit source frames as they stream past; faces are final once their segment
    is tracked (faces/segments.py) and the smoothing's few frames after it."""

    def __init__(self, tracker: FaceTracker) -> None:
        self.session = TrackingSession(tracker)
        self.session_result: FaceTrack | None = None
        self.whole_video = False

    def feed(self, batch: Batch) -> None:
        for src, frame in zip(batch.srcs, batch.frames):
            if int(src) == self.session.count:  # a first visit; revisits were tracked already
                self.session.push(frame)
        if batch.source_done:
            self.whole_video = True
            self.finish()

    def finish(self) -> None:
        if not self.session.ended:
            self.session.end()
        if self.session_result is None:
            self.session_result = self.session.result()

    def ready(self, srcs: NDArray[np.int64]) -> bool:
        return bool(self.session.ended or int(max(srcs)) < self.session.final_until())

    def faces(self, srcs: NDArray[np.int64], width: int, height: int) -> list[Face | None]:
        if self.session_result is not None:
            return [self.session_result.face(int(s), width, height) for s in srcs]
        start, stop = int(srcs[0]), int(srcs[-1]) + 1  # before the first pass ends, srcs are consecutive
        window = self.session.window(start, stop)
        return [window.face(int(s) - start, width, height) for s in srcs]

    def source_ended(self, decoded_frames: int | None) -> None:
        """The render pass is over; ``decoded_frames`` is the video's true length when its end was seen.

        An output exactly as long as its video ends without a revisit, so no batch
        says the source is done, yet every frame was tracked: the track is the
        whole video's (media.timeline reads one frame past the probed end to know)."""
        if decoded_frames is not None and decoded_frames == self.session.count:
            self.whole_video = True

    def close(self) -> None:
        self.session.close()


class FaceStage:
    """Pipeline stage: attaches final faces to each batch, holding batches back until they are final."""

    name = "faces"

    def __init__(self, faces: FaceSource, size: tuple[int, int]) -> None:
        self.faces = faces
        self.size = size
        self.pending: deque[Batch] = deque()

    def feed(self, batch: Batch) -> list[Batch]:
        self.faces.feed(batch)
        self.pending.append(batch)
        return self._release(final=False)

    def flush(self) -> list[Batch]:
        self.faces.finish()
        return self._release(final=True)

    def _release(self, final: bool) -> list[Batch]:
        ready = []
        while self.pending and (final or self.faces.ready(self.pending[0].srcs)):
            batch = self.pending.popleft()
            batch.faces = self.faces.faces(batch.srcs, *self.size)
            ready.append(batch)
        return ready
