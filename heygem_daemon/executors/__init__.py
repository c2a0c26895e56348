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


def create_executor(settings: Settings, extra_engines: dict[str, str]) -> VideoExecutor:
    """The executor the settings ask for; ``auto`` falls back to local when no cluster answers."""
    if settings.executor == "local":
        return _local(settings)
    from .ray_cluster import RayExecutor

    try:
        executor = RayExecutor(settings, extra_engines)
    except HeygemError as exc:
        if settings.executor == "ray":
            raise
        log.info("executor_chosen", executor="local", reason=str(exc))
        return _local(settings)
    log.info("executor_chosen", executor="ray", address=settings.ray.address)
    return executor


def _local(settings: Settings) -> LocalExecutor:
    return LocalExecutor(settings.workers, FaceTrackCache(settings.cache_path / "faces"))
