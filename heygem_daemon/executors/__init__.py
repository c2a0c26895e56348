"""Where a job's videos are rendered: this host's threads (``local``) or a Ray cluster (``ray``).

The runner (jobs/) asks for a ``VideoExecutor`` (jobs/execution.py); the daemon picks
one here at start-up from the ``executor`` setting.  Ray is imported only when
``ray`` or ``auto`` asks for it, so the default install runs without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import HeygemError
from ..faces.cache import FaceTrackCache
from ..jobs.execution import VideoExecutor
from ..logging import get_logger
from ..settings import Settings
from .local import LocalExecutor

if TYPE_CHECKING:
    from ..runtime import RuntimePlan

log = get_logger()


def create_executor(settings: Settings, extra_engines: dict[str, str], *,
                    plan: RuntimePlan | None = None) -> VideoExecutor:
    """The executor the settings ask for; ``auto`` falls back to local when no cluster answers.

    ``plan``: start-up's decision for this host (runtime.decide_runtime): the videos in flight,
    each local video's tracker processes and encoder threads; default: decided here."""
    if settings.executor == "local":
        return _local(settings, plan)
    from .ray_cluster import RayExecutor

    try:
        executor = RayExecutor(settings, extra_engines)
    except HeygemError as exc:
        if settings.executor == "ray":
            raise
        log.info("executor_chosen", executor="local", reason=str(exc))
        return _local(settings, plan)
    log.info("executor_chosen", executor="ray", address=settings.ray.address)
    return executor


def _local(settings: Settings, plan: RuntimePlan | None) -> LocalExecutor:
    if plan is None:
        from ..runtime import decide_runtime

        plan = decide_runtime(settings)
    return LocalExecutor(plan.workers, FaceTrackCache(settings.cache_path / "faces"),
                         tracker_processes=plan.tracker_processes, encoder_threads=plan.encoder_threads)
