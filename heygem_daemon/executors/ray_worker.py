"""The Ray actor that renders videos on a cluster node, with the same engine code as the daemon.

One ``HeygemRenderer`` holds one engine and one face tracker resident for its life;
Ray titles its process ``ray::HeygemRenderer`` and, while a video renders, this
module retitles it with the job and video, so ``ps`` on a node shows what renders
there.  A render streams back messages: progress fractions, then the output's
report, then the encoded MP4 in chunks read from a file on the node (so the video
is in memory a chunk at a time).  The node never writes to the share: the daemon
that claimed the job writes the chunks into its staging folder.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import socket
import tempfile
import threading
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import structlog

from ..engines.base import AudioFeatures
from ..errors import HeygemError
from ..faces.cache import FaceTrackCache
from ..faces.tracker import FaceTracker
from ..jobs.report import OutputReport
from ..render.video import VideoTask, VideoTools, make_video
from ..logging import configure, get_logger, job_sinks
from ..settings import Settings

log = get_logger()

ACTOR_TITLE = "ray::HeygemRenderer"


@dataclass(frozen=True)
class RenderRequest:
    """One output, as the daemon sees it; input paths are rewritten on the node when shipped."""

    #: "<job>: <video> + <audio>", for the process title
    label: str
    task: VideoTask
    features: AudioFeatures
    #: the output's report so far (JSON of OutputReport)
    report_json: str
    chunk_bytes: int


@dataclass(frozen=True)
class Rendered:
    """The output is encoded; its bytes follow as chunks."""

    report_json: str
    device: str
    size: int
    #: this video's log events on the node (video_started, faces_tracked, ...), for the job's log
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Failed:
    """The video failed on its own (no face, bad file): it is not retried."""

    error: HeygemError
    report_json: str
    device: str
    events: list[dict[str, Any]] = field(default_factory=list)


#: what a render yields: a progress fraction, Rendered then bytes, or Failed
Message = float | Rendered | Failed | bytes


class HeygemRenderer:
    """One engine kept resident on a node (an actor per engine and device)."""

    def __init__(self, settings: Settings, engine_name: str, extra_engines: dict[str, str]) -> None:
        from ..engines.registry import EngineRegistry
        from ..runtime import configure_runtime
        from ..service import engine_config

        if settings.ray.worker_cache_dir is not None:
            # this node's caches (engines', face tracks, spools) live where the admin said
            settings = settings.model_copy(update={"cache_dir": settings.ray.worker_cache_dir})
        # a worker process is a start-up of its own: JSON logs as the daemon's (Ray keeps them in worker-*.out)
        configure(settings.log_level)
        #: libx264's threads for this node's videos, decided by the node's own start-up
        self.encoder_threads = configure_runtime(settings).encoder_threads
        cache = settings.cache_path
        #: work folders of renders in progress: shipped inputs, the encoded output until sent
        self.root = cache / "ray"
        self.root.mkdir(parents=True, exist_ok=True)
        self.spool = cache / "spool"
        self.engine = EngineRegistry(engine_config(settings), extra_engines).get(engine_name)
        self.tracker = FaceTracker()
        self.track_cache = FaceTrackCache(cache / "faces")

    def describe(self) -> dict[str, Any]:
        """Where this actor lives: the daemon names nodes in its log and report with it."""
        import ray

        return {"node_id": ray.get_runtime_context().get_node_id(), "host": socket.gethostname(),
                "pid": os.getpid(), "device": str(getattr(self.engine, "device", "cpu")),
                "engine": self.engine.name}

    def render(self, request: RenderRequest, video: np.ndarray | None, audio: np.ndarray | None
               ) -> Iterator[Message]:
        """Render one output (inputs by path, or their bytes when shipped); see the module doc."""
        work = Path(tempfile.mkdtemp(prefix="render-", dir=self.root))
        try:
            task = replace(_local_task(request.task, work, video, audio), spool_dir=self.spool)
            yield from self._render(request, task, f"{ACTOR_TITLE}.render {request.label}")
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _render(self, request: RenderRequest, task: VideoTask, title: str) -> Iterator[Message]:
        report = OutputReport.model_validate_json(request.report_json)
        device = str(getattr(self.engine, "device", "cpu"))
        messages: queue.SimpleQueue[float | None] = queue.SimpleQueue()
        outcome: list[BaseException] = []
        # this video's events also go to a file of their own, sent back for the job's log.jsonl
        sink = f"ray-{uuid.uuid4().hex}"
        job_sinks.open(sink, task.output_path.with_name("log.jsonl"))

        def run() -> None:
            tools = VideoTools(self.engine, self.tracker, self.track_cache, lambda: None, messages.put,
                               encoder_threads=self.encoder_threads)
            try:
                with structlog.contextvars.bound_contextvars(job_id=sink, label=request.label):
                    make_video(task, request.features, tools, report)
            except BaseException as exc:  # handed to the generator, which re-raises what isn't ours
                outcome.append(exc)
            finally:
                job_sinks.close(sink)
                messages.put(None)

        # the render runs in a thread so progress can be yielded while it goes on
        thread = threading.Thread(target=run, name="render", daemon=True)
        thread.start()
        last = -1
        # Ray retitles the process around each step of a streaming task: title it again each time
        while True:
            _set_title(title)
            fraction = messages.get()
            if fraction is None:
                break
            if int(fraction * 100) != last:
                last = int(fraction * 100)
                yield fraction
        thread.join()
        events = _read_events(task.output_path.with_name("log.jsonl"))
        if outcome and isinstance(outcome[0], HeygemError):
            yield Failed(outcome[0], report.model_dump_json(), device, events)
            return
        if outcome:
            raise outcome[0]
        yield Rendered(report.model_dump_json(), device, task.output_path.stat().st_size, events)
        with open(task.output_path, "rb") as encoded:
            while chunk := encoded.read(request.chunk_bytes):
                yield chunk


def _read_events(path: Path) -> list[dict[str, Any]]:
    """The video's events, without what the daemon adds itself (its job id, time, the video's names)."""
    events = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        for key in ("job_id", "label", "timestamp"):
            event.pop(key, None)
        events.append(event)
    return events


def _local_task(task: VideoTask, work: Path, video: np.ndarray | None, audio: np.ndarray | None) -> VideoTask:
    """The task as this node runs it: shipped inputs written beside the output, under their own names."""
    task = replace(task, output_path=work / task.output_path.name)
    if video is not None:
        task = replace(task, video_path=_write(work / task.video_path.name, video))
    if audio is not None:
        task = replace(task, audio_path=_write(work / task.audio_path.name, audio))
    return task

def _write(path: Path, data: np.ndarray) -> Path:
    if not path.exists():  # a video that is also its own audio arrives twice
        with open(path, "wb") as out:
            out.write(data.data)
    return path


def _set_title(title: str) -> None:
    """Retitle the worker process as Ray does for each task.

    Ray's own setter, not the setproctitle package: Ray has already moved the process's
    argv to set its titles, and the package's later writes do not show in ``ps``
    (measured with ray 2.60).  Ray sets ``ray::HeygemRenderer`` again when the task ends."""
    import ray._raylet

    getattr(ray._raylet, "setproctitle")(title)  # compiled, and not in its type stub


def node_engines(settings: Settings, engine_names: list[str], extra_engines: dict[str, str]) -> dict[str, Any]:
    """Run on one node by ``doctor``: which engines can run there (config and models, no loading)."""
    import ray
    import torch

    from ..engines.registry import EngineRegistry
    from ..service import engine_config

    registry = EngineRegistry(engine_config(settings), extra_engines)
    engines = {}
    for name in engine_names:
        try:
            registry.check(name)
            engines[name] = "ok"
        except HeygemError as exc:
            engines[name] = str(exc)
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return {"node_id": ray.get_runtime_context().get_node_id(), "host": socket.gethostname(),
            "engines": engines, "cuda": gpus}

