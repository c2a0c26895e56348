"""One output video: plan → stream frames through tracking and the engine → encode.

Decoding, face tracking, rendering and encoding overlap: the ffmpeg reader and
writer are processes, tracking runs in the reader's thread (a tracking session
hands back smoothed faces a few frames behind the decode), rendering in the
caller's.  A cached face track (same video content) skips tracking.  A failure
here fails this output alone; the runner records it and the siblings go on.
"""

from __future__ import annotations

import time

import numpy as np
from numpy.typing import NDArray

from ..engines.base import AudioFeatures, AvatarFrames, Engine
from ..errors import NoFaceError
from ..logging import get_logger
from ..media.frame_spool import FrameSpool
from ..media.frames import FrameWriter, decode_rate
from ..media.timeline import FrameSource, Timeline
from .avatar import WINDOW_S, avatar_profile
from .face_source import Batch, CachedFaces, FaceSource, FaceStage, TrackedFaces, cached_track, store_track
from .moment import PosterMoment
from .outcome import OutputReport, SyncFigure, TimelineReport, Timings
from .pipeline import MapStage, Pipeline, Stage
from .plan import Features, PendingFeatures, VideoPlan, VideoTask, VideoTools, plan_video, resolve_features

__all__ = ["Features", "PendingFeatures", "VideoTask", "VideoTools", "make_video"]

log = get_logger()

#: frames in flight are bounded in bytes, not only in count, so a 4K video
#: holds as little memory as a 480p one (batches shrink as frames grow)
BATCH_BYTES = 24 * 1024 * 1024
#: an engine on a GPU gets bigger batches: its network reaches full speed only from about 128 frames a
#: call (ARCHITECTURE §8), which 24 MB would cut to 9 at 720p; a GPU server has the host memory for it
GPU_BATCH_BYTES = 512 * 1024 * 1024
QUEUE_DEPTH = 2


def frames_per_batch(engine: Engine, size: tuple[int, int]) -> int:
    """The engine's batch size, bounded by the bytes a batch of frames of ``size`` holds."""
    budget = GPU_BATCH_BYTES if str(engine.device).startswith("cuda") else BATCH_BYTES
    return max(1, min(engine.batch_size, budget // (size[0] * size[1] * 3)))


def make_video(task: VideoTask, features: Features, tools: VideoTools, report: OutputReport) -> None:
    """Render one output into ``task.output_path``; fills ``report`` as it goes.

    ``features`` may still be computed elsewhere (PendingFeatures): the video is planned, and a
    new avatar analysed, before they are waited for."""
    plan = plan_video(task, report.timings_s)
    # a new avatar's analysis decodes its frames once for itself, its mouth library and the render pass
    with FrameSpool(plan.size, choices=_frames_to_keep(plan)) as decoded:
        _make_video(task, plan, features, tools, report, decoded)


def _frames_to_keep(plan: VideoPlan) -> tuple[int, int]:
    """What a new avatar's analysis may keep for the second pass, best first: its analysis window
    too (the mouth library picks among those frames), or the frames the render pass shows (and the
    one after, which tells the end); FrameSpool keeps the first that fits, or none."""
    shown = min(plan.n_out, plan.info.frame_count) + 1
    analysed = min(plan.info.frame_count, int(WINDOW_S * plan.info.fps)) + 1
    return max(shown, analysed), shown


def _make_video(task: VideoTask, plan: VideoPlan, voice: Features, tools: VideoTools, report: OutputReport,
                decoded: FrameSpool) -> None:
    features = _fit_to_avatar(task, plan, voice, tools, report, decoded)
    cached = cached_track(tools, plan)
    log.info("video_started", size=f"{plan.size[0]}x{plan.size[1]}", fps=plan.info.fps, frames=plan.n_out,
             faces_cached=cached is not None)
    if cached is not None and cached.frames_with_face == 0:
        raise _no_face(task)
    tracked: TrackedFaces | None = None
    faces: FaceSource
    if cached is not None:
        faces = CachedFaces(cached)
    else:
        faces = tracked = TrackedFaces(tools.tracker)
    moment = PosterMoment(plan.info.fps, plan.duration_s, task.opening)
    try:
        frames, with_face, timeline = _render(task, plan, faces, features, tools, report.timings_s, moment, decoded)
    finally:
        faces.close()
    report.poster_at_s = moment.at_s
    report.timeline = TimelineReport(policy=timeline.policy, requested=timeline.requested,
                                     fallback_reason=timeline.fallback_reason)
    if tracked is not None:
        store_track(tools, plan, tracked)
    if with_face == 0:
        task.output_path.unlink(missing_ok=True)
        raise _no_face(task)
    report.frames, report.frames_with_face = frames, with_face
    # the builtin engine counts the frames it gave the avatar's own filmed mouths (builtin_exemplar.py)
    exemplar_frames = resolve_features(features, tools.check_stop).details.get("exemplar_frames")
    report.exemplar_frames = int(exemplar_frames) if exemplar_frames is not None else None
    report.duration_s = round(plan.duration_s, 3)


def _fit_to_avatar(task: VideoTask, plan: VideoPlan, voice: Features, tools: VideoTools,
                   report: OutputReport, decoded: FrameSpool) -> Features:
    """Calibrate the engine's speech stage to this avatar and record its sync figure."""
    adapt = getattr(tools.engine, "adapt", None)
    if adapt is None:
        report.sync_reason = f"the {tools.engine.name} engine has no speech-to-mouth stage to check"
        return voice  # waited for in the render pass, when the first frames' faces are ready
    started, tracking = time.perf_counter(), report.timings_s.faces
    profile, mouths = avatar_profile(task.video_path, plan, tools, task.limits, report.timings_s, decoded)
    # the analysis's own tracking counts as faces (the render pass takes that track from the cache)
    tracked_s = report.timings_s.faces - tracking
    report.timings_s.faces = round(report.timings_s.faces, 3)
    report.timings_s.avatar = round(time.perf_counter() - started - tracked_s, 3)
    if profile.sync is not None:
        report.sync = SyncFigure(r_truth=profile.sync.r_truth, lead_ms=profile.sync.lead_ms,
                                 frames=profile.sync.frames)
    report.sync_reason = profile.sync_reason
    # the job's own audio analysis ran beside this avatar's: its features are needed from here on
    adapted: AudioFeatures = adapt(resolve_features(voice, tools.check_stop), profile, mouths=mouths)
    return adapted


def _no_face(task: VideoTask) -> NoFaceError:
    return NoFaceError(f"No face was found in any frame of '{task.video_path.name}'.",
                       hint="Use a video where one person faces the camera.")


# -- the render pass -------------------------------------------------------------------------------
def _render(task: VideoTask, plan: VideoPlan, faces: FaceSource, voice: Features, tools: VideoTools,
            timings: Timings, moment: PosterMoment, decoded: FrameSpool) -> tuple[int, int, Timeline]:
    engine = tools.engine
    info = plan.info
    counts = [0, 0]
    pad = task.output.when_video_longer == "keep" and plan.duration_s > task.audio_duration_s
    per_batch = frames_per_batch(engine, plan.size)
    # engines that cache per-avatar work are told which avatar frames a batch shows (engines/base.py)
    per_avatar = bool(getattr(engine, "per_avatar_cache", False))
    in_place = bool(getattr(engine, "renders_in_place", False))
    avatar_key = f"{plan.digest}-{tools.tracker.name}"
    task.output_path.unlink(missing_ok=True)
    with (
        FrameSource(task.video_path, plan.size, plan.n_out, info.frame_count, task.output.when_video_shorter,
                    task.spool_dir, fps_text=decode_rate(info), decoded=decoded) as source,
        FrameWriter(task.output_path, plan.size, info.fps_text, audio_path=task.audio_path,
                    duration_s=plan.duration_s, crf=task.output.crf, preset=task.output.preset,
                    pad_audio=pad, threads=tools.encoder_threads) as writer,
    ):
        def produce() -> Batch | None:
            outs, srcs, frames = source.next_batch(per_batch)
            return None if len(outs) == 0 else Batch(outs, srcs, frames, source.decoded_frames is not None)

        def render(batch: Batch) -> NDArray[np.uint8]:
            # decoding and tracking went ahead while the job analysed the voice (waits at most once)
            features = resolve_features(voice, tools.check_stop)
            frames, found = batch.frames, batch.faces
            counts[0] += len(frames)
            counts[1] += sum(f is not None for f in found)
            moment.see(batch.outs, [f is not None for f in found])
            if any(f is not None for f in found):
                # what the engine says it takes (engines/base.py PerAvatarEngine, InPlaceEngine)
                options: dict[str, object] = {}
                if per_avatar:
                    options["avatar"] = AvatarFrames(avatar_key, batch.srcs, info.frame_count)
                if in_place:  # nothing reads a batch's frames after this stage but the encoder
                    options["in_place"] = True
                frames = engine.render(frames, found, features, batch.outs, info.fps, **options)
            tools.progress(min(1.0, counts[0] / max(plan.n_out, 1)))
            return frames

        def kill_ffmpeg() -> None:
            source.kill()
            writer.kill()

        stages: list[Stage] = [FaceStage(faces, plan.size), MapStage(render, name="render")]
        pipeline = Pipeline(produce, stages, writer.write, source_name="decode", sink_name="encode",
                            depth=QUEUE_DEPTH, check=tools.check_stop, on_hung=kill_ffmpeg)
        pipeline.run()
        closing = time.perf_counter()
    if isinstance(faces, TrackedFaces):
        faces.source_ended(source.decoded_frames)
    clock = pipeline.clock
    timings.faces = round(timings.faces + clock.get("faces", 0.0), 3)
    timings.decode = round(clock.get("decode", 0.0), 3)
    timings.render = round(clock.get("render", 0.0), 3)
    timings.encode = round(clock.get("encode", 0.0) + time.perf_counter() - closing, 3)
    return counts[0], counts[1], source.timeline
