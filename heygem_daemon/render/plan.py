"""What one output is, and what it needs: the task the runner hands over, the tools that outlive
a video, and the plan made from probing the avatar (size, frame count, content digest).

The avatar analysis, the mouth library and the render pass all read the plan; it lives
apart from them so that none of them imports another for its types.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..engines.base import AudioFeatures, Engine
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
    #: libx264's threads (runtime.RuntimePlan.encoder_threads; 0: x264's own choice)
    encoder_threads: int = 0


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


class PendingFeatures:
    """A voice's features while the job still computes them in a thread of its own.

    The job's audio analysis (seconds of CPU per minute of speech) used to finish
    before any video started; now a video plans itself, and a new avatar is
    tracked and analysed, meanwhile, and it waits only where it first needs the
    features (``resolve_features``).  A failed analysis fails each video that
    waits for it with the same error.
    """

    def __init__(self) -> None:
        self._done = threading.Event()
        self._features: AudioFeatures | None = None
        self._error: BaseException | None = None

    def set(self, features: AudioFeatures) -> None:
        self._features = features
        self._done.set()

    def fail(self, error: BaseException) -> None:
        self._error = error
        self._done.set()

    def wait(self, check_stop: Callable[[], None], poll_s: float = 0.1) -> AudioFeatures:
        """The features, once computed; ``check_stop`` is polled while waiting (a stop never waits)."""
        while not self._done.wait(poll_s):
            check_stop()
        if self._error is not None:
            # a copy per waiting video: one exception object raised in several threads shares its traceback
            raise copy.copy(self._error)
        assert self._features is not None
        return self._features


#: what a video is given for its voice: the features, or their promise
Features = AudioFeatures | PendingFeatures


def resolve_features(features: Features, check_stop: Callable[[], None]) -> AudioFeatures:
    return features.wait(check_stop) if isinstance(features, PendingFeatures) else features
