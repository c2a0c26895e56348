"""What the runner asks of whoever renders a job's videos: this host's threads or a Ray cluster.

The runner stays the only writer of the job's results: an executor renders each
unit into ``unit.task.output_path`` (a hidden partial file in staging) and fills
``unit.report``; the runner's ``finish`` commits the file and records the result.
Executors live in ``heygem_daemon/executors/``, above this package, and are handed
to the runner at start-up.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

import structlog

from ..engines.base import Engine
from ..errors import HeygemError, StopRequested
from .report import OutputReport
from .spec import OutputPair
from ..render.plan import Features, VideoTask


@dataclass
class VideoUnit:
    """One output to render, and where its outcome goes."""

    pair: OutputPair
    task: VideoTask
    #: the voice's features, or their promise while the job still computes them
    features: Features
    report: OutputReport
    #: fraction of this video done → the status page ("video 3 of 8: 40%")
    progress: Callable[[float], None]
    #: where it was rendered ("cpu", "cuda:0", "ray node-b cuda:0"); set by the executor
    where: str = ""
    #: the job's name, for process titles on cluster nodes
    job: str = ""
    started: float = field(default_factory=time.perf_counter)

    def bound(self) -> AbstractContextManager[None]:
        """Log lines about this unit name its video and audio (job.log.jsonl, journald)."""
        return structlog.contextvars.bound_contextvars(video=self.pair.video, audio=self.pair.audio)


#: the runner's verdict on a rendered unit: ``error`` None = rendered, else it failed on its own.
#: Raises what must stop the job (a full outbox); the executor lets that through.
Finish = Callable[[VideoUnit, HeygemError | None], None]


class VideoExecutor(Protocol):
    """Renders a job's units; a unit that fails on its own never stops its siblings."""

    #: "local" or "ray", logged with each job
    name: str

    def prepare(self, engine_name: str) -> None:
        """Get ready to render with this engine before the daemon reports ready (models load once)."""
        ...

    def render(self, engine: Engine, units: Sequence[VideoUnit], finish: Finish,
               check_stop: Callable[[], None]) -> None:
        """Render every unit, calling ``finish`` once per unit that ended (rendered or failed).

        ``engine`` is the job's engine on this host (its name picks the remote pool).
        Raises StopRequested when ``check_stop`` does (units not finished are redone
        on resume), and whatever ``finish`` raised.
        """
        ...

    def close(self) -> None:
        """Release what the executor holds (threads, the cluster connection)."""
        ...


def raise_first(errors: Sequence[BaseException | None]) -> None:
    """After a job's videos ran in parallel: a stop first (the job is checkpointed), else the first
    error that must end the job (a full outbox); ``None`` entries are videos that ended normally."""
    stops = [e for e in errors if isinstance(e, StopRequested)]
    if stops:
        raise stops[0]
    others = [e for e in errors if e is not None]
    if others:
        raise others[0]
