"""One output video: probe → stream frames through tracking and the engine → encode.

Decoding, face tracking, rendering and encoding overlap: the ffmpeg reader and
writer are processes, tracking runs in the reader's thread (a tracking session
hands back smoothed faces a few frames behind the decode), rendering in the
caller's.  A cached face track (same video content) skips tracking.  A failure
here fails this output alone; the runner records it and the siblings go on.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
from numpy.typing import NDArray

from ..engines.base import AudioFeatures, Engine, Face
from ..errors import MediaError, NoFaceError
from ..faces.cache import FaceTrackCache
from ..faces.session import TrackingSession
from ..faces.track import FaceTrack
from ..faces.tracker import FaceTracker
from ..logging import get_logger
from ..media.audio import file_digest
from ..media.frames import FrameWriter, decode_rate, output_size
from ..media.probe import VideoInfo, probe
from ..media.timeline import FrameSource, Timeline, output_frame_count
from ..settings import LimitSettings, OutputSettings
from .pipeline import MapStage, Pipeline, Stage
from .avatar import avatar_profile
from .poster import OpeningCurve, PosterMoment
from .report import OutputReport, SyncFigure, TimelineReport, Timings

log = get_logger()

#: frames in flight are bounded in bytes, not only in count, so a 4K video
#: holds as little memory as a 480p one (batches shrink as frames grow)
BATCH_BYTES = 24 * 1024 * 1024
QUEUE_DEPTH = 2


@dataclass(frozen=True)
class VideoTask:
    video_path: Path
    audio_path: Path
    audio_duration_s: float
    output_path: Path
    output: OutputSettings
    limits: LimitSettings
    spool_dir: Path
    #: the voice's mouth opening over time, to choose the poster's moment (jobs.poster)
    opening: OpeningCurve | None = None


@dataclass
class VideoTools:
    """What a video needs that lives longer than one video."""

    engine: Engine
    tracker: FaceTracker
    track_cache: FaceTrackCache
    #: raises StopRequested when the daemon must stop now
    check_stop: Callable[[], None]
    #: progress callback: fraction of this video done
    progress: Callable[[float], None] = lambda fraction: None


@dataclass
class _Plan:
    info: VideoInfo
    size: tuple[int, int]
    n_out: int
    duration_s: float
    digest: str
    #: the avatar video carries a sound track of its own
    has_audio: bool = False


def make_video(task: VideoTask, features: AudioFeatures, tools: VideoTools, report: OutputReport) -> None:
    """Render one output into ``task.output_path``; fills ``report`` as it goes."""
    plan = _plan(task, report.timings_s)
    features = _fit_to_avatar(task, plan, features, tools, report)
    cached = _cached_track(tools, plan)
    log.info("video_started", size=f"{plan.size[0]}x{plan.size[1]}", fps=plan.info.fps, frames=plan.n_out,
             faces_cached=cached is not None)
    if cached is not None and cached.frames_with_face == 0:
        raise _no_face(task)
    tracked: _TrackedFaces | None = None
    faces: FaceSource
    if cached is not None:
        faces = _CachedFaces(cached)
    else:
        faces = tracked = _TrackedFaces(tools.tracker)
    moment = PosterMoment(plan.info.fps, plan.duration_s, task.opening)
    try:
        frames, with_face, timeline = _render(task, plan, faces, features, tools, report.timings_s, moment)
    finally:
        faces.close()
    report.poster_at_s = moment.at_s
    report.timeline = TimelineReport(policy=timeline.policy, requested=timeline.requested,
                                     fallback_reason=timeline.fallback_reason)
    if tracked is not None:
        _store_track(tools, plan, tracked)
    if with_face == 0:
        task.output_path.unlink(missing_ok=True)
        raise _no_face(task)
    report.frames, report.frames_with_face = frames, with_face
    # the builtin engine counts the frames it gave the avatar's own filmed mouths (builtin_exemplar.py)
    exemplar_frames = features.details.get("exemplar_frames")
    report.exemplar_frames = int(exemplar_frames) if exemplar_frames is not None else None
    report.duration_s = round(plan.duration_s, 3)


def _fit_to_avatar(task: VideoTask, plan: _Plan, features: AudioFeatures, tools: VideoTools,
                   report: OutputReport) -> AudioFeatures:
    """Calibrate the engine's speech stage to this avatar and record its sync figure."""
    adapt = getattr(tools.engine, "adapt", None)
    if adapt is None:
        report.sync_reason = f"the {tools.engine.name} engine has no speech-to-mouth stage to check"
        return features
    started = time.perf_counter()
    profile, mouths = avatar_profile(task.video_path, plan, tools, task.limits)
    report.timings_s.avatar = round(time.perf_counter() - started, 3)
    if profile.sync is not None:
        report.sync = SyncFigure(r_truth=profile.sync.r_truth, lead_ms=profile.sync.lead_ms,
                                 frames=profile.sync.frames)
    report.sync_reason = profile.sync_reason
    adapted: AudioFeatures = adapt(features, profile, mouths=mouths)
    return adapted


def _plan(task: VideoTask, timings: Timings) -> _Plan:
    found = probe(task.video_path, task.limits)
    if found.video is None:
        raise MediaError(f"'{task.video_path.name}' has no video stream.")
    info = found.video
    n_out = output_frame_count(task.audio_duration_s, info.fps, max(info.frame_count, 1),
                               task.output.when_video_longer)
    keep = task.output.when_video_longer == "keep"
    duration = max(n_out / info.fps, task.audio_duration_s) if keep else task.audio_duration_s
    started = time.perf_counter()
    digest = file_digest(task.video_path)
    timings.faces += time.perf_counter() - started
    return _Plan(info, output_size(info, task.output.max_height), n_out, duration, digest,
                 has_audio=found.audio is not None)


def _no_face(task: VideoTask) -> NoFaceError:
    return NoFaceError(f"No face was found in any frame of '{task.video_path.name}'.",
                       hint="Use a video where one person faces the camera.")


# -- faces: from the cache, or tracked during the render pass ----------------------------------
def _cache_keys(plan: _Plan, frames: int | None = None) -> list[str]:
    """The whole video's key, then (trimmed outputs) the key of its first frames."""
    keys = [plan.digest]
    if frames is None:
        frames = min(plan.n_out, max(plan.info.frame_count, 1))
    if frames < plan.info.frame_count:
        keys.insert(0, f"{plan.digest}-first{frames}")
    return keys


def _cached_track(tools: VideoTools, plan: _Plan) -> FaceTrack | None:
    for key in _cache_keys(plan):
        track = tools.track_cache.get(key, tools.tracker.name)
        if track is not None:
            log.info("faces_from_cache", frames=len(track), with_face=track.frames_with_face)
            return track
    return None


def _store_track(tools: VideoTools, plan: _Plan, faces: "_TrackedFaces") -> None:
    track = faces.session_result
    if track is None or len(track) == 0:
        return
    key = plan.digest if faces.whole_video else f"{plan.digest}-first{len(track)}"
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


class _CachedFaces:
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


class _TrackedFaces:
    """Tracks first-visit source frames as they stream past; faces are final a few frames later."""

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

    def close(self) -> None:
        self.session.close()


# -- the render pass -------------------------------------------------------------------------------
class _FaceStage:
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


def _render(task: VideoTask, plan: _Plan, faces: FaceSource, features: AudioFeatures, tools: VideoTools,
            timings: Timings, moment: PosterMoment) -> tuple[int, int, Timeline]:
    engine = tools.engine
    width, height = plan.size
    info = plan.info
    counts = [0, 0]
    pad = task.output.when_video_longer == "keep" and plan.duration_s > task.audio_duration_s
    per_batch = max(1, min(engine.batch_size, BATCH_BYTES // (width * height * 3)))
    task.output_path.unlink(missing_ok=True)
    with (
        FrameSource(task.video_path, plan.size, plan.n_out, info.frame_count, task.output.when_video_shorter,
                    task.spool_dir, fps_text=decode_rate(info)) as source,
        FrameWriter(task.output_path, plan.size, info.fps_text, audio_path=task.audio_path,
                    duration_s=plan.duration_s, crf=task.output.crf, preset=task.output.preset,
                    pad_audio=pad) as writer,
    ):
        def produce() -> Batch | None:
            outs, srcs, frames = source.next_batch(per_batch)
            return None if len(outs) == 0 else Batch(outs, srcs, frames, source.decoded_frames is not None)

        def render(batch: Batch) -> NDArray[np.uint8]:
            frames, found = batch.frames, batch.faces
            counts[0] += len(frames)
            counts[1] += sum(f is not None for f in found)
            moment.see(batch.outs, [f is not None for f in found])
            if any(f is not None for f in found):
                frames = engine.render(frames, found, features, batch.outs, info.fps)
            tools.progress(min(1.0, counts[0] / max(plan.n_out, 1)))
            return frames

        def kill_ffmpeg() -> None:
            source.kill()
            writer.kill()

        stages: list[Stage] = [_FaceStage(faces, plan.size), MapStage(render, name="render")]
        pipeline = Pipeline(produce, stages, writer.write, source_name="decode", sink_name="encode",
                            depth=QUEUE_DEPTH, check=tools.check_stop, on_hung=kill_ffmpeg)
        pipeline.run()
        closing = time.perf_counter()
    clock = pipeline.clock
    timings.faces = round(timings.faces + clock.get("faces", 0.0), 3)
    timings.decode = round(clock.get("decode", 0.0), 3)
    timings.render = round(clock.get("render", 0.0), 3)
    timings.encode = round(clock.get("encode", 0.0) + time.perf_counter() - closing, 3)
    return counts[0], counts[1], source.timeline
