"""This host's executor: a job's videos on ``workers`` threads, the engine shared in-process.

The default (``executor = "local"``), needing nothing beyond the base install.
"""

from __future__ import annotations

import contextvars
import queue
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

from ..engines.base import Engine
from ..errors import HeygemError
from ..faces.cache import FaceTrackCache
from ..faces.tracker import FaceTracker
from ..jobs.execution import Finish, VideoUnit, raise_first
from ..render.video import VideoTools, make_video


class TrackerPool:
    """Face-mesh trackers (LiteRT interpreters) are not thread-safe: one per concurrent video.

    Each tracks on ``processes`` worker processes of its own (faces/workers.py), stopped by ``close``."""

    def __init__(self, processes: int = 0) -> None:
        self.processes = processes
        self._free: queue.SimpleQueue[FaceTracker] = queue.SimpleQueue()
        self._made: list[FaceTracker] = []

    def take(self) -> FaceTracker:
        try:
            return self._free.get_nowait()
        except queue.Empty:
            tracker = FaceTracker(processes=self.processes)
            self._made.append(tracker)
            return tracker

    def give(self, tracker: FaceTracker) -> None:
        self._free.put(tracker)

    def close(self) -> None:
        """Stop every tracker's worker processes."""
        for tracker in self._made:
            tracker.close()


class LocalExecutor:
    name = "local"

    def __init__(self, workers: int, track_cache: FaceTrackCache, *, tracker_processes: int = 0,
                 encoder_threads: int = 0) -> None:
        self.workers = workers
        self.encoder_threads = encoder_threads
        self.trackers = TrackerPool(tracker_processes)
        self.track_cache = track_cache

    def prepare(self, engine_name: str) -> None:
        """Create one face tracker before the daemon reports ready (its models load once)."""
        self.trackers.give(self.trackers.take())

    def render(self, engine: Engine, units: Sequence[VideoUnit], finish: Finish,
               check_stop: Callable[[], None]) -> None:
        def one(unit: VideoUnit) -> None:
            tracker = self.trackers.take()
            try:
                with unit.bound():
                    unit.started = time.perf_counter()
                    unit.where = str(getattr(engine, "device", "cpu"))
                    tools = VideoTools(engine, tracker, self.track_cache, check_stop, unit.progress,
                                       encoder_threads=self.encoder_threads)
                    try:
                        make_video(unit.task, unit.features, tools, unit.report)
                    except HeygemError as exc:
                        finish(unit, exc)
                        return
                finish(unit, None)
            finally:
                self.trackers.give(tracker)

        workers = max(1, min(self.workers, len(units)))
        if workers == 1:
            for unit in units:
                one(unit)
            return
        with ThreadPoolExecutor(workers, thread_name_prefix="video") as pool:
            futures = [pool.submit(contextvars.copy_context().run, one, unit) for unit in units]
            errors = [f.exception() for f in futures]
        raise_first(errors)

    def close(self) -> None:
        self.trackers.close()
