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
    (Machine(cores=64, memory_bytes=3 * GiB + 5), 2),                         # host memory
    (Machine(cores=256, memory_bytes=1024 * GiB), 16),                        # the cap
    (Machine(cores=64, memory_bytes=120 * GiB, gpu_free_bytes=2 * GiB), 1),   # never below one
])
def test_auto_workers_is_the_least_the_machine_carries(machine: Machine, expected: int):
    """Cores // 4, available memory // 1.5 GiB (6 GiB with the engines on a GPU) and (free GPU memory - 8 GiB)
    // 4 GiB, at least 1, at most 16."""
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
    assert daemon.executor.encoder_threads == daemon.runtime.encoder_threads  # type: ignore[attr-defined]


def test_this_machine_is_read_from_the_process_and_the_device():
    """Machine.here: the cores this process may run on, some available memory, no GPU for device "cpu"."""
    import os

    here = Machine.here("cpu")
    assert (len(os.sched_getaffinity(0)), None) == (here.cores, here.gpu_free_bytes)
    assert here.memory_bytes > 0


def test_an_executor_made_without_a_count_decides_auto_itself(tmp_path):
    """create_executor outside the daemon (no plan given) turns "auto" into the plan's count, and takes the
    plan's tracker processes and encoder threads with it."""
    from heygem_daemon.executors import create_executor

    settings = Settings(inbox=tmp_path / "in", outbox=tmp_path / "out", workers="auto")
    executor = create_executor(settings, {})
    plan = decide_runtime(settings)
    assert plan.workers == executor.workers  # type: ignore[attr-defined]
    assert plan.tracker_processes == executor.trackers.processes  # type: ignore[attr-defined]
    assert plan.encoder_threads == executor.encoder_threads  # type: ignore[attr-defined]


# -- host memory: what a video in flight holds, and limits the kernel enforces ---------------------------------
def test_a_video_on_a_gpu_is_given_the_host_memory_of_its_batches():
    """With the engines on a GPU a render batch is up to 512 MB and, with the encoder the slowest stage, up
    to nine of them are in flight (benchmarks/host_memory.py: 5.2 GB at 1080p with ffmpeg): "auto" counts 6 GiB a
    video there, 1.5 GiB on the CPU, so a 16-core GPU host with 12 GiB free runs two videos, not four."""
    from heygem_daemon.render.video import BATCH_BYTES, GPU_BATCH_BYTES
    from heygem_daemon.runtime import HOST_BYTES_PER_VIDEO, HOST_BYTES_PER_VIDEO_ON_GPU

    assert HOST_BYTES_PER_VIDEO_ON_GPU >= 9 * GPU_BATCH_BYTES and HOST_BYTES_PER_VIDEO >= 9 * BATCH_BYTES
    gpu_host = Machine(cores=16, memory_bytes=12 * GiB, gpu_free_bytes=139 * GiB)
    plan = decide_runtime(Settings(workers="auto", default_engine="wav2lip"), gpu_host)
    assert 2 == plan.workers
    assert "12.0 GiB available // 6 GiB per video (GPU-sized batches) = 2" in plan.workers_rule
    assert 4 == decide_runtime(Settings(workers="auto"), Machine(cores=16, memory_bytes=12 * GiB)).workers


def _cgroup_tree(tmp_path, self_cgroup: str, groups: dict[str, dict[str, str]], available_gib: int = 20):
    """A /proc and a /sys/fs/cgroup of real files: MemAvailable, this process's cgroup line(s), and
    each group's memory files."""
    proc, cgroups = tmp_path / "proc", tmp_path / "cgroup"
    (proc / "self").mkdir(parents=True)
    (proc / "meminfo").write_text(f"MemTotal: 33554432 kB\nMemAvailable: {available_gib * 1024 * 1024} kB\n")
    (proc / "self" / "cgroup").write_text(self_cgroup)
    cgroups.mkdir()
    for name, files in groups.items():
        folder = cgroups / name if name else cgroups
        folder.mkdir(parents=True, exist_ok=True)
        for file, text in files.items():
            (folder / file).write_text(text)
    return proc, cgroups


def test_a_services_memory_max_bounds_the_memory_auto_plans_with(tmp_path):
    """cgroup v2 (systemd's MemoryMax=3G on the service): 3 GiB - 1 GiB used + 0.5 GiB of reclaimable page
    cache = 2.5 GiB, not the host's 20; the rule says so, and one video fits where 13 would have been planned."""
    from heygem_daemon.runtime import available_memory

    service = "system.slice/heygem-daemon.service"
    proc, cgroups = _cgroup_tree(tmp_path, "0::/system.slice/heygem-daemon.service\n", {
        "": {"cgroup.controllers": "cpu memory pids\n"},
        "system.slice": {"memory.max": "max\n", "memory.current": "9000000000\n"},
        service: {"memory.max": f"{3 * GiB}\n", "memory.current": f"{GiB}\n",
                  "memory.stat": f"anon 500000000\ninactive_file {GiB // 2}\nactive_file 1000\n"},
    })
    assert (GiB * 5 // 2, True) == available_memory(proc, cgroups)
    machine = Machine(cores=64, memory_bytes=GiB * 5 // 2, memory_limited=True)
    plan = decide_runtime(Settings(workers="auto"), machine)
    assert 1 == plan.workers
    assert "2.5 GiB available under this process's cgroup memory limit // 1.5 GiB per video = 1" in plan.workers_rule


def test_a_tighter_parent_slice_bounds_it_too(tmp_path):
    """The least of the group and its ancestors counts: a 2 GiB slice above an unlimited service."""
    from heygem_daemon.runtime import available_memory

    proc, cgroups = _cgroup_tree(tmp_path, "0::/jobs.slice/heygem-daemon.service\n", {
        "jobs.slice": {"memory.max": f"{2 * GiB}\n", "memory.current": f"{GiB // 4}\n"},
        "jobs.slice/heygem-daemon.service": {"memory.max": "max\n", "memory.current": f"{GiB // 4}\n"},
    })
    assert (GiB * 7 // 4, True) == available_memory(proc, cgroups)


def test_a_cgroup_v1_container_limit_is_read_where_the_container_mounts_its_own_group(tmp_path):
    """cgroup v1 (Docker, this build box): /proc/self/cgroup names the group from the host's root
    (/docker/ID) while the container sees its own group at the mount; "unlimited" is 2**63 rounded
    down to a page; usage counts the page cache, so inactive file pages come back."""
    from heygem_daemon.runtime import available_memory

    lines = "12:memory:/docker/0123abcd\n11:cpu,cpuacct:/docker/0123abcd\n1:name=systemd:/docker/0123abcd\n0::/\n"
    proc, cgroups = _cgroup_tree(tmp_path, lines, {"memory": {
        "memory.limit_in_bytes": f"{4 * GiB}\n", "memory.usage_in_bytes": f"{3 * GiB}\n",
        "memory.stat": f"cache 100\ninactive_file 7\ntotal_inactive_file {GiB}\n"}})
    assert (2 * GiB, True) == available_memory(proc, cgroups)
    (cgroups / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert (20 * GiB, False) == available_memory(proc, cgroups)


@pytest.mark.parametrize("self_cgroup", ["0::/\n", "garbage without colons\n", None])
def test_without_a_readable_limit_the_hosts_memory_counts(tmp_path, self_cgroup):
    """No limit ("max"), a line that is not a cgroup entry, or no /proc/self/cgroup at all: MemAvailable."""
    from heygem_daemon.runtime import available_memory

    proc, cgroups = _cgroup_tree(tmp_path, self_cgroup or "", {"": {"memory.max": "max\n"}})
    if self_cgroup is None:
        (proc / "self" / "cgroup").unlink()
    assert (20 * GiB, False) == available_memory(proc, cgroups)


def test_a_limit_above_what_the_host_has_left_changes_nothing(tmp_path):
    """A 64 GiB MemoryMax on a host with 20 GiB available: the host's figure, not marked as limited."""
    from heygem_daemon.runtime import available_memory

    proc, cgroups = _cgroup_tree(tmp_path, "0::/svc\n", {"svc": {"memory.max": f"{64 * GiB}\n",
                                                                  "memory.current": f"{GiB}\n"}})
    assert (20 * GiB, False) == available_memory(proc, cgroups)


@pytest.mark.parametrize("version, lines, files, expected", [
    # systemd's CPUQuota=250% on the service (v2): three cores' worth of planning, not the host's 64
    ("v2", "0::/system.slice/heygem-daemon.service\n", {"system.slice/heygem-daemon.service": {"cpu.max": "250000 100000\n"},
                                                          "system.slice": {"cpu.max": "max 100000\n"}}, 3),
    # docker --cpus 4 (v1: a cpu,cpuacct mount reached through its "cpu" name, the container's own group at it)
    ("v1", "4:cpu,cpuacct:/docker/0123abcd\n0::/\n", {"cpu": {"cpu.cfs_quota_us": "400000\n",
                                                              "cpu.cfs_period_us": "100000\n"}}, 4),
    # a quota under one core still leaves one
    ("v2", "0::/tiny\n", {"tiny": {"cpu.max": "20000 100000\n"}}, 1),
    # no quota: v1's -1, v2's "max"
    ("v1", "4:cpu,cpuacct:/\n", {"cpu": {"cpu.cfs_quota_us": "-1\n", "cpu.cfs_period_us": "100000\n"}}, None),
    ("v2", "0::/svc\n", {"svc": {"cpu.max": "max 100000\n"}}, None),
])
def test_a_cpu_quota_bounds_the_cores_auto_plans_with(tmp_path, monkeypatch, version, lines, files, expected):
    """A CPU quota (CPUQuota=, docker --cpus) on a 64-core host: the cores planned are the quota rounded up, at
    least one, and the rule says where they came from; without a quota, every CPU the process may run on."""
    import os

    from heygem_daemon.runtime import usable_cores

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))  # the 64-core host (a real one is 2 here)
    proc, cgroups = _cgroup_tree(tmp_path, lines, files)
    assert ((expected, True) if expected else (64, False)) == usable_cores(proc, cgroups)
    if expected:
        machine = Machine(cores=expected, memory_bytes=120 * GiB, cores_limited=True)
        rule = decide_runtime(Settings(workers="auto"), machine).workers_rule
        assert f"{expected} cores (the cgroup CPU quota) // 4 per video" in rule


def test_doctor_in_a_limited_cgroup_plans_under_its_memory_and_cpu_limits(tmp_path):
    """The real kernel's cgroups: `doctor --workers auto` started in a cgroup limited to 3 GiB and one core's
    time reports at most 3 GiB available and one core, both from the cgroup, whatever the host has.
    Needs a writable cgroup hierarchy (root; v1's memory and cpu controllers or v2's root): the tests
    above cover the files without it."""
    import os
    import subprocess
    import sys

    groups = _new_cgroups(f"heygem-test-{os.getpid()}", memory=3 * GiB, cpu_quota_us=100_000)
    if groups is None:
        pytest.skip("no writable cgroup hierarchy here (needs root and cgroup v1 memory+cpu, or v2's root)")
    try:
        (tmp_path / "in").mkdir()
        (tmp_path / "out").mkdir()
        join = " && ".join(f"echo $$ > {group / 'cgroup.procs'}" for group in groups)
        script = (f"{{ {join}; }} 2>/dev/null || exit 77; exec {sys.executable} -m heygem_daemon.cli doctor "
                  f"--workers auto --device cpu --inbox {tmp_path / 'in'} --outbox {tmp_path / 'out'}")
        result = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=120)
        if result.returncode == 77:
            pytest.skip("the new cgroup could be made but not joined here")
        assert result.returncode == 0, result.stdout + result.stderr
        runtime = next(line for line in result.stdout.splitlines() if "runtime:" in line)
        figure = float(runtime.split(" GiB available under this process's cgroup memory limit")[0].rsplit(" ", 1)[1])
        assert 2.0 < figure <= 3.0, runtime
        assert "auto: the least of 1 cores (the cgroup CPU quota) // 4 per video" in runtime
        assert "per video: 1 core(s)" in runtime
    finally:
        for group in groups:
            group.rmdir()


def _new_cgroups(name: str, *, memory: int, cpu_quota_us: int):
    """A new cgroup (v2) or pair of them (v1 memory and cpu) with these limits, or None where none can be made."""
    from pathlib import Path

    root = Path("/sys/fs/cgroup")
    if (root / "memory").is_dir() and (root / "cpu").is_dir():  # v1
        wanted = [(root / "memory" / name, {"memory.limit_in_bytes": str(memory)}),
                  (root / "cpu" / name, {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": str(cpu_quota_us)})]
    elif {"memory", "cpu"} <= set(_read(root / "cgroup.subtree_control").split()):  # v2, a child of the root
        wanted = [(root / name, {"memory.max": str(memory), "cpu.max": f"{cpu_quota_us} 100000"})]
    else:
        return None
    made = []
    try:
        for group, files in wanted:
            group.mkdir()
            made.append(group)
            for file, value in files.items():
                (group / file).write_text(value)
    except OSError:
        for group in made:
            group.rmdir()
        return None
    return made


def _read(path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


@pytest.mark.parametrize("machine, workers, expected, shown", [
    (TWO_CORE_BOX, "auto", 0, "encoder threads auto"),           # one video with every core: x264's own count
    (H200_SERVER, "auto", 6, "encoder threads 6"),               # four videos of 4 cores: 1.5 a core each
    (H200_SERVER, 2, 12, "encoder threads 12"),                  # two videos of 8 cores
    (Machine(cores=64, memory_bytes=120 * GiB), 2, 16, "encoder threads 16"),  # at most 16
    (Machine(cores=4, memory_bytes=20 * GiB, cores_limited=True), 1, 6, "encoder threads 6"),  # a 4-core quota
])
def test_each_video_encodes_with_threads_for_its_share_of_the_cores(machine, workers, expected, shown):
    """x264 counts every CPU the process may run on, not a video's share or a CPU quota (four videos on 16 cores
    ran 24 encoder threads each, each frame thread holding frames): so with several videos in flight, or under a
    quota, start-up gives each encoder 1.5 threads per core of its share, at most 16; doctor shows the count."""
    plan = decide_runtime(Settings(workers=workers, default_engine="wav2lip"), machine)
    assert expected == plan.encoder_threads
    assert shown in plan.summary()
