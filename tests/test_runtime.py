"""Process-wide switches are decided once, at start-up (runtime.py), never per batch."""

from __future__ import annotations

import torch

import pytest

from heygem_daemon.runtime import Machine, configure_runtime, decide_runtime, torch_threads
from heygem_daemon.settings import Settings

GiB = 1 << 30
#: the box these tests run on, and the lent GPU server of issue 23 (16 cores, an H200)
TWO_CORE_BOX = Machine(cores=2, memory_bytes=20 * GiB)
H200_SERVER = Machine(cores=16, memory_bytes=120 * GiB, gpu_free_bytes=139 * GiB)


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
    """No other module sets a warnings filter, cuDNN's benchmark mode, progress bars or torch's threads in the
    daemon's process; the face tracker's worker processes (faces/workers.py) are processes of their own, whose
    start-up sets their OpenCV threads once and nothing else."""
    from pathlib import Path

    package = Path(__file__).resolve().parents[1] / "heygem_daemon"
    switches = ("set_num_threads(", "warnings.filterwarnings(", "cudnn.benchmark =", "disable_progress_bar(",
                "enable_progress_bar(", "setNumThreads(")
    found = {(p.name, s): p.read_text(encoding="utf-8").count(s) for p in package.rglob("*.py") for s in switches}
    setters = sorted({(name, s, n) for (name, s), n in found.items() if n and name != "runtime.py"})
    assert [("workers.py", "setNumThreads(", 1)] == setters
    assert found[("runtime.py", "set_num_threads(")] and found[("runtime.py", "setNumThreads(")]


def test_auto_workers_on_a_two_core_box_is_one_video():
    """workers = "auto" on 2 cores: one video in flight, with both cores for its threads."""
    plan = decide_runtime(Settings(workers="auto"), TWO_CORE_BOX)
    assert (1, 2, 2) == (plan.workers, plan.cores_per_video, plan.opencv_threads)
    # two cores are already full with decode, render and encode: the video tracks in its own process
    assert 0 == plan.tracker_processes
    assert plan.workers_rule.startswith("auto: the least of 2 cores // 4 per video = 0")


def test_auto_workers_on_the_h200_server_is_four_videos_of_four_cores():
    """16 cores and a 139 GiB GPU: the cores decide (16 // 4); torch and OpenCV get 4 threads each."""
    plan = decide_runtime(Settings(workers="auto", default_engine="builtin"), H200_SERVER)
    assert (4, 4, 4, 4) == (plan.workers, plan.cores_per_video, plan.torch_threads, plan.opencv_threads)
    # each video's segments are tracked on the cores its decoder and encoder leave free
    assert 2 == plan.tracker_processes
    assert "on 2 tracking worker process(es)" in plan.summary()


@pytest.mark.parametrize("machine, expected", [
    (Machine(cores=64, memory_bytes=120 * GiB, gpu_free_bytes=12 * GiB), 1),  # (12 - 8) // 4
    (Machine(cores=64, memory_bytes=120 * GiB, gpu_free_bytes=24 * GiB), 4),  # (24 - 8) // 4
    (Machine(cores=64, memory_bytes=3 * GiB + 5), 3),                         # host memory
    (Machine(cores=256, memory_bytes=1024 * GiB), 16),                        # the cap
    (Machine(cores=64, memory_bytes=120 * GiB, gpu_free_bytes=2 * GiB), 1),   # never below one
])
def test_auto_workers_is_the_least_the_machine_carries(machine: Machine, expected: int):
    """Cores // 4, available memory // 1 GiB and (free GPU memory - 8 GiB) // 4 GiB, at least 1, at most 16."""
    assert expected == decide_runtime(Settings(workers="auto"), machine).workers


def test_a_set_worker_count_is_kept_and_shares_the_cores():
    """workers = 2 on 16 cores stays 2; each video's share is 8 cores."""
    plan = decide_runtime(Settings(workers=2, default_engine="wav2lip"), H200_SERVER)
    assert (2, "set", 8, 8) == (plan.workers, plan.workers_rule, plan.torch_threads, plan.opencv_threads)


def test_a_gpu_host_with_the_builtin_default_gets_more_than_one_torch_thread():
    """The H200 logged torch_threads 1: the one-thread rule is for the builtin warp on the CPU only."""
    assert 4 == torch_threads(Settings(default_engine="builtin"), cores=16, workers=4, on_gpu=True)
    assert 1 == torch_threads(Settings(default_engine="builtin"), cores=16, workers=4, on_gpu=False)


def test_configure_runtime_applies_and_returns_the_plan():
    """The plan given is the plan applied: torch and OpenCV thread counts, returned for doctor."""
    import cv2

    before = (torch.get_num_threads(), cv2.getNumThreads())
    plan = decide_runtime(Settings(workers="auto", default_engine="wav2lip"), TWO_CORE_BOX)
    try:
        assert plan is configure_runtime(Settings(default_engine="wav2lip"), plan)
        assert (2, 2) == (torch.get_num_threads(), cv2.getNumThreads())
    finally:
        torch.set_num_threads(before[0])
        cv2.setNumThreads(before[1])


@pytest.mark.parametrize("value", [0, 65, "many", 2.5, True, ""])
def test_workers_is_a_count_or_auto(value):
    """Anything but 1..64 or "auto" is refused at start-up with one sentence naming both."""
    from heygem_daemon.errors import HeygemError
    from heygem_daemon.settings import load_settings

    with pytest.raises(HeygemError, match='workers must be "auto" or a whole number from 1 to 64'):
        load_settings(None, workers=value)
    assert ("auto", 3) == (Settings(workers="auto").workers, Settings(workers="3").workers)


def test_the_daemon_renders_as_many_videos_as_start_up_decided(tmp_path):
    """The local executor gets the plan's worker count, decided once before the engines load."""
    from heygem_daemon.service import Daemon

    daemon = Daemon(Settings(inbox=tmp_path / "in", outbox=tmp_path / "out", workers="auto"), handle_signals=False)
    assert daemon.executor.workers == daemon.runtime.workers >= 1  # type: ignore[attr-defined]
    assert daemon.executor.trackers.processes == daemon.runtime.tracker_processes  # type: ignore[attr-defined]


def test_this_machine_is_read_from_the_process_and_the_device():
    """Machine.here: the cores this process may run on, some available memory, no GPU for device "cpu"."""
    import os

    here = Machine.here("cpu")
    assert (len(os.sched_getaffinity(0)), None) == (here.cores, here.gpu_free_bytes)
    assert here.memory_bytes > 0


def test_an_executor_made_without_a_count_decides_auto_itself(tmp_path):
    """create_executor outside the daemon (no plan given) turns "auto" into the plan's count."""
    from heygem_daemon.executors import create_executor

    settings = Settings(inbox=tmp_path / "in", outbox=tmp_path / "out", workers="auto")
    executor = create_executor(settings, {})
    assert decide_runtime(settings).workers == executor.workers  # type: ignore[attr-defined]
