"""Which torch device an engine runs on, and batches that shrink instead of failing.

Only a real CUDA out-of-memory is treated as "try a smaller batch": any other
RuntimeError is a bug or a broken input and must surface, not be retried.
"""

from __future__ import annotations

from typing import Callable, TypeVar

import torch

from ..errors import EngineError, for_admin
from ..logging import get_logger

log = get_logger()

R = TypeVar("R")


def select_device(requested: str) -> torch.device:
    """"auto" → cuda:0 when CUDA is usable, else cpu; "cuda"/"cuda:N" must exist."""
    if requested == "cpu":
        return torch.device("cpu")
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda:0")
        log.warning(
            "cpu_fallback",
            reason="no usable CUDA GPU (torch.cuda.is_available() is False)",
            torch=torch.__version__,
            cuda_build=torch.version.cuda,
        )
        return torch.device("cpu")
    return _cuda_device(requested)


def _cuda_device(requested: str) -> torch.device:
    name, _, index_text = requested.partition(":")
    if name != "cuda" or (index_text and not index_text.isdigit()):
        raise EngineError(f"Unknown device '{requested}'.", hint="Use 'auto', 'cpu', 'cuda' or 'cuda:N'.")
    if not torch.cuda.is_available():
        raise EngineError(
            f"Device '{requested}' was asked for but no CUDA GPU is usable here "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'none'}).",
            hint=for_admin('set device = "auto" or "cpu" in daemon.toml, or install the CUDA build of torch'),
        )
    index = int(index_text or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise EngineError(
            f"Device '{requested}' does not exist: this machine has {count} GPU(s) (cuda:0..cuda:{count - 1})."
        )
    return torch.device("cuda", index)


def run_batched(fn: Callable[[int, int], R], total: int, batch: int, *, min_batch: int = 1) -> tuple[list[R], int]:
    """Call ``fn(start, stop)`` over ``range(total)`` in chunks of ``batch`` items.

    On CUDA out-of-memory the chunk is retried at half the size (down to
    ``min_batch``), and the smaller size is kept for the rest.  Returns the
    results in order and the batch size that worked, so callers can remember it.
    """
    results: list[R] = []
    start = 0
    size = max(batch, min_batch)
    while start < total:
        stop = min(start + size, total)
        try:
            results.append(fn(start, stop))
        except torch.cuda.OutOfMemoryError as exc:
            size = _halve(size, min_batch, exc)
            continue
        start = stop
    return results, size


def _halve(size: int, min_batch: int, exc: BaseException) -> int:
    if size <= min_batch:
        raise EngineError(
            f"The GPU ran out of memory even at a batch of {size} frame(s).",
            hint=for_admin('free the GPU (another process may be using it), or run on device = "cpu"'),
        ) from exc
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    smaller = max(min_batch, size // 2)
    log.warning("batch_out_of_memory", batch=size, retry_with=smaller)
    return smaller
