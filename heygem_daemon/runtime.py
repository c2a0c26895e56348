"""Process-wide switches, decided once at start-up (STYLE: global state lives in one place).

torch's intra-op thread count belongs to the whole process: an engine that set it
per batch and restored it afterwards would race with itself when videos render in
parallel (``workers > 1``), each thread restoring what another had just set.  So
the daemon decides it here, before any engine is created, and nothing changes it
afterwards.  The other switches live here too: the warnings filter, cuDNN's
kernel search and transformers' progress bars.
"""

from __future__ import annotations

import os
import warnings

from .logging import get_logger
from .settings import Settings

log = get_logger()


def torch_threads(settings: Settings, cores: int | None = None) -> int:
    """The intra-op thread count for torch.

    The builtin engine's warp works on small crops that lose far more to thread
    hand-offs than they gain (measured 8 ms vs 650 ms a batch on a busy 2-core
    box) while the decoder, tracker and encoder need the other cores: one thread.
    Network engines on the CPU get the cores shared out between the parallel videos.
    """
    if settings.default_engine == "builtin":
        return 1
    available = cores if cores is not None else len(os.sched_getaffinity(0))
    return max(1, available // settings.workers)


def configure_runtime(settings: Settings) -> None:
    """Set the process-wide switches; called once by the daemon before it creates an engine."""
    import torch

    # watchdog 7 warns when a recursive inotify watch re-adds a callback for a
    # folder created and removed quickly (our claim renames); harmless, and the
    # scan is the source of truth anyway
    warnings.filterwarnings("ignore", message="Callback with id", category=RuntimeWarning)
    threads = torch_threads(settings)
    torch.set_num_threads(threads)
    if settings.models.wav2lip is not None:
        # Wav2Lip's batches have one shape: let cuDNN time its kernels once and keep the
        # fastest (the channels-last fp16 ones); no effect without CUDA
        torch.backends.cudnn.benchmark = True
    _quiet_progress_bars()
    log.info("runtime_configured", torch_threads=threads, cudnn_benchmark=torch.backends.cudnn.benchmark)


def _quiet_progress_bars() -> None:
    """tqdm bars on stderr (transformers loading a model) would end up as garbage lines in journald."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
