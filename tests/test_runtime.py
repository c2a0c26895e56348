"""Process-wide switches are decided once, at start-up (runtime.py), never per batch."""

from __future__ import annotations

import torch

from heygem_daemon.runtime import configure_runtime, torch_threads
from heygem_daemon.settings import Settings


def test_the_builtin_engine_gets_one_torch_thread():
    """Default engine builtin: one intra-op thread, whatever the cores or workers."""
    assert 1 == torch_threads(Settings(default_engine="builtin", workers=4), cores=16)


def test_network_engines_share_the_cores_between_parallel_videos():
    """Other engines: the cores divided by the workers, at least one."""
    assert 8 == torch_threads(Settings(default_engine="wav2lip", workers=2), cores=16)
    assert 1 == torch_threads(Settings(default_engine="wav2lip", workers=4), cores=2)


def test_configure_runtime_sets_torch_once():
    """configure_runtime applies the decision to torch."""
    before = torch.get_num_threads()
    try:
        configure_runtime(Settings(default_engine="wav2lip", workers=64))
        assert 1 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def test_the_warp_leaves_the_thread_count_alone():
    """No engine code calls torch.set_num_threads: the count stays what start-up set."""
    from pathlib import Path

    package = Path(__file__).resolve().parents[1] / "heygem_daemon"
    callers = [p.name for p in package.rglob("*.py") if "set_num_threads" in p.read_text(encoding="utf-8")]
    assert ["runtime.py"] == callers


def test_configure_runtime_sets_every_process_wide_switch(tmp_path):
    """The warnings filter, cuDNN's kernel search (with Wav2Lip configured) and transformers' progress bars."""
    import warnings

    from transformers.utils import logging as hf_logging

    checkpoint = tmp_path / "wav2lip.pth"
    before = (torch.get_num_threads(), torch.backends.cudnn.benchmark, list(warnings.filters))
    try:
        hf_logging.enable_progress_bar()
        configure_runtime(Settings(default_engine="wav2lip", models={"wav2lip": checkpoint}))
        assert torch.backends.cudnn.benchmark
        assert not hf_logging.is_progress_bar_enabled()
        assert any(f[0] == "ignore" and f[1] is not None and f[1].pattern == "Callback with id"
                   for f in warnings.filters)
    finally:
        torch.set_num_threads(before[0])
        torch.backends.cudnn.benchmark = before[1]
        warnings.filters[:] = before[2]


def test_only_runtime_sets_process_wide_switches():
    """No other module sets a warnings filter, cuDNN's benchmark mode, progress bars or torch's threads."""
    from pathlib import Path

    package = Path(__file__).resolve().parents[1] / "heygem_daemon"
    switches = ("set_num_threads(", "warnings.filterwarnings(", "cudnn.benchmark =", "disable_progress_bar(",
                "enable_progress_bar(")
    setters = sorted({p.name for p in package.rglob("*.py") for s in switches if s in p.read_text(encoding="utf-8")})
    assert ["runtime.py"] == setters
