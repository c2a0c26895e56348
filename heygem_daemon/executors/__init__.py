"""Where a job's videos are rendered: this host's threads (``local``) or a Ray cluster (``ray``).

The runner (jobs/) asks for a ``VideoExecutor`` (jobs/execution.py); the daemon picks
one here at start-up from the ``executor`` setting.  Ray is imported only when
``ray`` or ``auto`` asks for it, so the default install runs without it.
"""

from __future__ import annotations

from ..errors import HeygemError
from ..faces.cache import FaceTrackCache
from ..jobs.execution import VideoExecutor
from ..logging import get_logger
from ..settings import Settings
from .local import LocalExecutor

log = get_logger()


def create_executor(settings: Settings, extra_engines: dict[str, str], *, workers: int | None = None,
                    tracker_processes: int = 0, encoder_threads: int = 0) -> VideoExecutor:
    """The executor the settings ask for; ``auto`` falls back to local when no cluster answers.

    ``workers``: videos in flight on this host, as start-up decided them (runtime.decide_runtime);
    default: the setting, with "auto" decided here.  ``tracker_processes``: worker processes
    each local video's face tracker uses (faces.workers.tracking_processes); ``encoder_threads``:
    libx264's threads per local video (runtime.encoder_threads; 0: x264's own choice)."""
    if settings.executor == "local":
        return _local(settings, workers, tracker_processes, encoder_threads)
    from .ray_cluster import RayExecutor

    try:
        executor = RayExecutor(settings, extra_engines)
    except HeygemError as exc:
        if settings.executor == "ray":
            raise
        log.info("executor_chosen", executor="local", reason=str(exc))
        return _local(settings, workers, tracker_processes, encoder_threads)
    log.info("executor_chosen", executor="ray", address=settings.ray.address)
    return executor


def _local(settings: Settings, workers: int | None, tracker_processes: int = 0,
           encoder_threads: int = 0) -> LocalExecutor:
    if workers is None:
        from ..runtime import decide_runtime

        workers = decide_runtime(settings).workers
    return LocalExecutor(workers, FaceTrackCache(settings.cache_path / "faces"), tracker_processes=tracker_processes,
                         encoder_threads=encoder_threads)
