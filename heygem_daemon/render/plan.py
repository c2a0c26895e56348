"""What one output is, and what it needs: the task the runner hands over, the tools that outlive
a video, and the plan made from probing the avatar (size, frame count, content digest).

The avatar analysis, the mouth library and the render pass all read the plan; it lives
apart from them so that none of them imports another for its types.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..engines.base import Engine
from ..errors import MediaError
from ..faces.cache import FaceTrackCache
from ..faces.tracker import FaceTracker
from ..media.audio import file_digest
from ..media.frames import output_size
from ..media.probe import VideoInfo, probe
from ..media.timeline import output_frame_count
from ..settings import LimitSettings, OutputSettings
from .moment import OpeningCurve
from .outcome import Timings


@dataclass(frozen=True)
class VideoTask:
    """One output to render: which avatar, which voice, where the file goes, and how."""

    video_path: Path
    audio_path: Path
    audio_duration_s: float
    output_path: Path
    output: OutputSettings
    limits: LimitSettings
    spool_dir: Path
    #: the voice's mouth opening over time, to choose the poster's moment (render/moment.py)
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
class VideoPlan:
    """One avatar video as probed for one output."""

    info: VideoInfo
    size: tuple[int, int]
    n_out: int
    duration_s: float
    digest: str
    #: the avatar video carries a sound track of its own
    has_audio: bool = False


def plan_video(task: VideoTask, timings: Timings) -> VideoPlan:
    """Probe the avatar and fix the output's size and length; hashing it counts as face time (it keys the caches)."""
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
    return VideoPlan(info, output_size(info, task.output.max_height), n_out, duration, digest,
                     has_audio=found.audio is not None)
