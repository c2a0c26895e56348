"""One output video: probe → faces (cached) → stream frames through the engine → encode.

A failure here fails this output alone; the runner records it and the job's
other videos go on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..engines.base import AudioFeatures, Engine
from ..errors import MediaError, NoFaceError
from ..faces.cache import FaceTrackCache
from ..faces.track import FaceTrack
from ..faces.tracker import FaceTracker
from ..logging import get_logger
from ..media.audio import file_digest
from ..media.frames import FrameReader, FrameWriter, output_size
from ..media.probe import VideoInfo, probe
from ..media.timeline import FrameSource, output_frame_count
from ..settings import LimitSettings, OutputSettings
from .pipeline import Pipeline
from .report import OutputReport, Timings

log = get_logger()

#: faces are tracked on a smaller decode: landmarks are resolution independent
TRACK_HEIGHT = 640


@dataclass(frozen=True)
class VideoTask:
    video_path: Path
    audio_path: Path
    audio_duration_s: float
    output_path: Path
    output: OutputSettings
    limits: LimitSettings
    spool_dir: Path


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


def make_video(task: VideoTask, features: AudioFeatures, tools: VideoTools, report: OutputReport) -> None:
    """Render one output into ``task.output_path``; fills ``report`` as it goes."""
    timings = report.timings_s
    info = _video_info(task)
    track = _face_track(task, info, tools, timings)
    report.frames_with_face = 0
    size = output_size(info, task.output.max_height)
    n_out = output_frame_count(
        task.audio_duration_s, info.fps, max(info.frame_count, 1), task.output.when_video_longer
    )
    duration = n_out / info.fps if task.output.when_video_longer == "keep" else task.audio_duration_s
    log.info("video_started", size=f"{size[0]}x{size[1]}", fps=info.fps, frames=n_out)
    counts = _render(task, info, size, n_out, duration, track, features, tools, timings)
    report.frames, report.frames_with_face = counts
    report.duration_s = round(duration, 3)


def _video_info(task: VideoTask) -> VideoInfo:
    info = probe(task.video_path, task.limits)
    if info.video is None:
        raise MediaError(f"'{task.video_path.name}' has no video stream.")
    return info.video


def _face_track(task: VideoTask, info: VideoInfo, tools: VideoTools, timings: Timings) -> FaceTrack:
    started = time.perf_counter()
    digest = file_digest(task.video_path)
    track = tools.track_cache.get(digest, tools.tracker.name)
    if track is None:
        size = output_size(info, min(info.height, TRACK_HEIGHT))
        with FrameReader(task.video_path, size, fps_text=_fps_arg(info)) as reader:
            track = tools.tracker.track(_checked(reader, tools.check_stop))
        tools.track_cache.put(digest, tools.tracker.name, track)
        log.info("faces_tracked", frames=len(track), with_face=track.frames_with_face, cached=False)
    else:
        log.info("faces_from_cache", frames=len(track), with_face=track.frames_with_face, cached=True)
    timings.faces = round(time.perf_counter() - started, 3)
    if track.frames_with_face == 0:
        raise NoFaceError(
            f"No face was found in any frame of '{task.video_path.name}'.",
            hint="Use a video where one person faces the camera.",
        )
    return track


def _checked(frames, check_stop):
    for frame in frames:
        check_stop()
        yield frame


def _fps_arg(info: VideoInfo) -> str | None:
    return info.fps_text if info.variable_rate else None


def _render(task, info, size, n_out, duration, track, features, tools, timings) -> tuple[int, int]:
    engine = tools.engine
    width, height = size
    counts = [0, 0]
    pad = task.output.when_video_longer == "keep" and duration > task.audio_duration_s
    task.output_path.unlink(missing_ok=True)
    with (
        FrameSource(
            task.video_path, size, n_out, info.frame_count, task.output.when_video_shorter,
            task.spool_dir, fps_text=_fps_arg(info),
        ) as source,
        FrameWriter(
            task.output_path, size, info.fps_text, audio_path=task.audio_path, duration_s=duration,
            crf=task.output.crf, preset=task.output.preset, pad_audio=pad,
        ) as writer,
    ):
        def produce():
            outs, srcs, frames = source.next_batch(engine.batch_size)
            return None if len(outs) == 0 else (outs, srcs, frames)

        def transform(batch):
            outs, srcs, frames = batch
            faces = [track.face(int(s), width, height) for s in srcs]
            counts[0] += len(frames)
            counts[1] += sum(f is not None for f in faces)
            if any(f is not None for f in faces):
                frames = engine.render(frames, faces, features, outs, info.fps)
            tools.progress(min(1.0, counts[0] / max(n_out, 1)))
            return frames

        pipeline = Pipeline(produce, transform, writer.write, depth=3, check=tools.check_stop)
        pipeline.run()
        started = time.perf_counter()
    timings.encode = round(pipeline.clock.write + time.perf_counter() - started, 3)
    timings.decode = round(pipeline.clock.read, 3)
    timings.render = round(pipeline.clock.transform, 3)
    return counts[0], counts[1]
