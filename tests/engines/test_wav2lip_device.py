"""Device selection and out-of-memory batch halving.

This box has no GPU: CUDA out-of-memory is raised by the test's own function
(a real torch.cuda.OutOfMemoryError instance), the one part that cannot be real here.
"""

from __future__ import annotations

import pytest
import torch
from structlog.testing import capture_logs

from heygem_daemon.engines.device import run_batched, select_device
from heygem_daemon.errors import EngineError

no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour of a machine without a GPU")


def test_cpu_is_cpu() -> None:
    """'cpu' always gives the CPU."""
    assert select_device("cpu") == torch.device("cpu")


@no_gpu
def test_auto_falls_back_to_cpu_with_a_log_line() -> None:
    """'auto' without CUDA gives the CPU and says so in a warning."""
    with capture_logs() as logs:
        assert select_device("auto") == torch.device("cpu")
    assert [e["event"] for e in logs] == ["cpu_fallback"]
    assert logs[0]["log_level"] == "warning"


@no_gpu
def test_explicit_cuda_without_gpu_is_an_engine_error() -> None:
    """Asking for 'cuda:1' on a machine without CUDA fails with a readable reason."""
    with pytest.raises(EngineError, match="no CUDA GPU is usable"):
        select_device("cuda:1")


def test_unknown_device_name() -> None:
    """A device name that is neither auto, cpu nor cuda[:N] is refused."""
    with pytest.raises(EngineError, match="Unknown device 'tpu'"):
        select_device("tpu")


def test_run_batched_covers_everything_in_order() -> None:
    """Chunks cover range(total) in order; the batch size is kept when nothing fails."""
    results, size = run_batched(lambda a, b: list(range(a, b)), 10, 4)
    assert results == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert size == 4


def test_out_of_memory_halves_and_remembers() -> None:
    """A CUDA OOM at 8 retries the same items at 4, then 2, and keeps 2."""
    calls: list[tuple[int, int]] = []

    def fn(start: int, stop: int) -> list[int]:
        calls.append((start, stop))
        if stop - start > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated: no GPU here)")
        return list(range(start, stop))

    with capture_logs() as logs:
        results, size = run_batched(fn, 6, 8)
    assert [x for chunk in results for x in chunk] == list(range(6))
    assert size == 2
    assert calls[:3] == [(0, 6), (0, 4), (0, 2)]
    assert [e["event"] for e in logs] == ["batch_out_of_memory"] * 2


def test_out_of_memory_at_min_batch_is_an_engine_error() -> None:
    """When even min_batch does not fit, the error says so instead of looping."""

    def fn(start: int, stop: int) -> None:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")

    with pytest.raises(EngineError, match="out of memory even at a batch of 1"):
        run_batched(fn, 4, 4)


def test_other_runtime_errors_are_not_retried() -> None:
    """A RuntimeError that is not an OOM propagates at once, untouched."""
    calls = []

    def fn(start: int, stop: int) -> None:
        calls.append(stop - start)
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        run_batched(fn, 8, 8)
    assert calls == [8]
