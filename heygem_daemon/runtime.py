"""Process-wide switches, decided once at start-up (STYLE: global state lives in one place).

torch's intra-op thread count belongs to the whole process: an engine that set it
per batch and restored it afterwards would race with itself when videos render in
parallel (``workers > 1``), each thread restoring what another had just set.  So
the daemon decides it here, before any engine is created, and nothing changes it
afterwards.  The other switches live here too: the warnings filter, cuDNN's
kernel search and transformers' progress bars.

How many videos are in flight (``workers``, "auto" included) and the threads each
gets are decided here too, once, from the machine (``Machine.here``), and
``doctor`` prints the same decision (``RuntimePlan.summary``).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from .cgroups import cgroup_cpu_quota, cgroup_memory_left
from .logging import get_logger
from .settings import Settings

log = get_logger()

#: cores one video in flight keeps busy: the decoder, the face tracking, the hand-off to
#: the engine and libx264 (four bare 720p transcodes side by side on 16 cores: 851 frames/s)
CORES_PER_VIDEO = 4
#: host memory one more video in flight needs with the engines on the CPU, its ffmpeg processes
#: included: frames in flight in 24 MB batches, the frames a new avatar's analysis keeps (at most
#: 512 MiB), its face track; the builtin engine's first job of an avatar that fills that keep took
#: 1.28 GB at 720p and 1.42 GB at 1080p (benchmarks/host_memory.py --engine builtin)
HOST_BYTES_PER_VIDEO = 3 << 29  # 1.5 GiB
#: the same with the engines on a GPU: its render batches are up to 512 MB (render/video.py
#: GPU_BATCH_BYTES) and, where the encoder is the slowest stage (a GPU host), every queue before it
#: fills: up to nine batches in flight, 2.6 GB at 720p and 5.2 GB at 1080p with ffmpeg
#: (benchmarks/host_memory.py --encoder-fps 40), and x264 holds more with more threads
HOST_BYTES_PER_VIDEO_ON_GPU = 6 << 30
#: GPU memory one more video in flight needs with the wav2lip engine at 1080p: a batch of
#: 128 frames and its pasted copy (1.6 GB), the face windows in float32 (~1.2 GB) and the
#: network's activations; an estimate until gpu_check.py's "peak GPU memory" line is measured
GPU_BYTES_PER_VIDEO = 4 << 30
#: GPU memory kept for the resident models of every engine (shared by all videos)
GPU_BYTES_FOR_MODELS = 8 << 30
#: more videos than this only queue on one GPU and one interpreter lock
MAX_AUTO_WORKERS = 16


@dataclass(frozen=True)
class Machine:
    """What the decision is made from."""

    cores: int
    #: host memory available now: MemAvailable, or less where this process's cgroup limit leaves less
    memory_bytes: int
    #: free memory of the GPU the engines run on; None: they run on the CPU
    gpu_free_bytes: int | None = None
    #: whether a cgroup limit (systemd's MemoryMax=, a container's) set ``memory_bytes``
    memory_limited: bool = False
    #: whether a cgroup CPU quota (systemd's CPUQuota=, docker's --cpus) set ``cores``
    cores_limited: bool = False

    @property
    def on_gpu(self) -> bool:
        return self.gpu_free_bytes is not None

    @classmethod
    def here(cls, device: str) -> "Machine":
        """This host: the cores this process may use, available memory and the engines' GPU."""
        cores, quota = usable_cores()
        memory, limited = available_memory()
        return cls(cores=cores, memory_bytes=memory, memory_limited=limited, cores_limited=quota,
                   gpu_free_bytes=_gpu_free_bytes(device))


@dataclass(frozen=True)
class RuntimePlan:
    """Videos in flight and the threads each gets: decided once at start-up, reported by doctor."""

    workers: int
    #: why that many ("4 (set)" or the "auto" rule with its numbers)
    workers_rule: str
    #: cores shared out per video in flight (the tracker's worker processes come out of it)
    cores_per_video: int
    #: torch intra-op threads (process-wide)
    torch_threads: int
    #: OpenCV's parallel_for threads (process-wide)
    opencv_threads: int
    #: LiteRT interpreter threads per face mesh
    tracker_threads: int
    #: worker processes of each video's face tracker (0: it tracks in the video's own process)
    tracker_processes: int
    #: libx264's threads per encoder; 0: x264's own choice (1.5 per CPU the process may run on, at most
    #: two rows of macroblocks each), which is right only while one video has every core to itself
    encoder_threads: int

    def summary(self) -> str:
        return (f"{self.workers} video(s) in flight ({self.workers_rule}); per process: torch {self.torch_threads} "
                f"thread(s), OpenCV {self.opencv_threads}; per video: {self.cores_per_video} core(s), face mesh "
                f"{self.tracker_threads} interpreter thread(s) on {self.tracker_processes} tracking worker process(es), "
                f"encoder threads {self.encoder_threads or 'auto'}")


def decide_runtime(settings: Settings, machine: Machine | None = None) -> RuntimePlan:
    """The plan for ``settings`` on ``machine`` (default: this host)."""
    from .faces.workers import tracking_processes  # the rule lives beside the workers it sizes

    machine = machine or Machine.here(settings.device)
    if settings.workers == "auto":
        workers, rule = auto_workers(machine)
    else:
        workers, rule = settings.workers, "set"
    share = max(1, machine.cores // workers)
    return RuntimePlan(
        workers=workers, workers_rule=rule, cores_per_video=share,
        torch_threads=torch_threads(settings, machine.cores, workers=workers, on_gpu=machine.on_gpu),
        # OpenCV's default is every core per call; with several videos converting frames at once
        # that oversubscribes the cores, so each video's calls get its share
        opencv_threads=share,
        # parallel videos and the tracker's worker processes scale; interpreter threads barely do
        # (one video 129 -> 152 frames/s with 4 threads on 16 cores, ARCHITECTURE section 8)
        tracker_threads=1,
        # tracking is sequential within a segment: a video's segments spread over processes, not threads
        tracker_processes=tracking_processes(share),
        encoder_threads=encoder_threads(share, alone=workers == 1 and not machine.cores_limited),
    )


#: most libx264 threads a video gets when they are counted here (x264's own count, for a video that
#: has every core, goes up to one per two macroblock rows: 22 at 720p, 34 at 1080p)
MAX_ENCODER_THREADS = 16


def encoder_threads(cores_per_video: int, *, alone: bool) -> int:
    """libx264's threads for a video with ``cores_per_video``; 0 (x264's own choice) when it is ``alone``.

    x264 counts every CPU the process may run on (1.5 threads each), not the video's share and not
    a CPU quota: four videos on 16 cores ran 24 threads each, and each frame thread holds frames
    (at 1080p an encoder took 330 MB with 3 threads, 785 MB with 24, 1.0 GB with 34; two 720p
    encoders side by side on this 2-core box finished in 1.53-1.56 s with 2 threads each against
    1.60-1.72 s with x264's 3).  So with several videos in flight, or under a quota, each encoder
    gets x264's rule applied to its share."""
    if alone:
        return 0
    return max(1, min(MAX_ENCODER_THREADS, math.ceil(1.5 * cores_per_video)))


def auto_workers(machine: Machine) -> tuple[int, str]:
    """``workers = "auto"``: the fewest of what the cores, the host memory and the GPU memory carry."""
    per_video = HOST_BYTES_PER_VIDEO_ON_GPU if machine.on_gpu else HOST_BYTES_PER_VIDEO
    where = " under this process's cgroup memory limit" if machine.memory_limited else ""
    limits = {
        f"{machine.cores} cores{' (the cgroup CPU quota)' if machine.cores_limited else ''} // {CORES_PER_VIDEO} "
        "per video": machine.cores // CORES_PER_VIDEO,
        f"{machine.memory_bytes / 2**30:.1f} GiB available{where} // {per_video / 2**30:g} GiB per video"
        + (" (GPU-sized batches)" if machine.on_gpu else ""): machine.memory_bytes // per_video,
    }
    if machine.gpu_free_bytes is not None:
        free = machine.gpu_free_bytes
        limits[f"{free / 2**30:.1f} GiB free on the GPU, {GPU_BYTES_FOR_MODELS / 2**30:g} kept for the models, "
               f"// {GPU_BYTES_PER_VIDEO / 2**30:g} GiB per video"] = (free - GPU_BYTES_FOR_MODELS) // GPU_BYTES_PER_VIDEO
    workers = max(1, min(MAX_AUTO_WORKERS, *limits.values()))
    return workers, "auto: the least of " + ", ".join(f"{why} = {n}" for why, n in limits.items()) \
        + f", at least 1 and at most {MAX_AUTO_WORKERS}"


def torch_threads(settings: Settings, cores: int | None = None, *, workers: int | None = None,
                  on_gpu: bool = False) -> int:
    """The intra-op thread count for torch.

    The builtin engine's warp on the CPU works on small crops that lose far more to
    thread hand-offs than they gain (measured 8 ms vs 650 ms a batch on a busy 2-core
    box) while the decoder, tracker and encoder need the other cores: one thread.
    Network engines on the CPU, and whatever torch does on the host when the engines
    run on a GPU, get the cores shared out between the parallel videos.  (Until
    2026-12 a GPU host with the builtin default got one thread too: the 16-core H200
    logged ``torch_threads: 1`` while its jobs asked for wav2lip.)
    """
    if settings.default_engine == "builtin" and not on_gpu:
        return 1
    available = cores if cores is not None else usable_cores()[0]
    if workers is None:
        workers = settings.workers if isinstance(settings.workers, int) else 1
    return max(1, available // workers)


def configure_runtime(settings: Settings, plan: RuntimePlan | None = None) -> RuntimePlan:
    """Set the process-wide switches; called once by the daemon before it creates an engine.

    ``plan``: the decision already made for this start-up (the daemon makes it before
    its executor); without it one is made here."""
    import cv2
    import torch

    plan = plan or decide_runtime(settings)

    # watchdog 7 warns when a recursive inotify watch re-adds a callback for a
    # folder created and removed quickly (our claim renames); harmless, and the
    # scan is the source of truth anyway
    warnings.filterwarnings("ignore", message="Callback with id", category=RuntimeWarning)
    torch.set_num_threads(plan.torch_threads)
    cv2.setNumThreads(plan.opencv_threads)
    if settings.models.wav2lip is not None:
        # Wav2Lip's batches have one shape: let cuDNN time its kernels once and keep the
        # fastest (the channels-last fp16 ones); no effect without CUDA
        torch.backends.cudnn.benchmark = True
    _quiet_progress_bars()
    log.info("runtime_configured", **asdict(plan), cudnn_benchmark=torch.backends.cudnn.benchmark)
    return plan


def _quiet_progress_bars() -> None:
    """tqdm bars on stderr (transformers loading a model) would end up as garbage lines in journald."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # transformers has no annotations here


def available_memory(proc: Path = Path("/proc"), cgroups: Path = Path("/sys/fs/cgroup")) -> tuple[int, bool]:
    """Host memory this process may still take, and whether a cgroup limit is what bounds it.

    MemAvailable does not know a service's ``MemoryMax=`` or a container's memory limit;
    planning by it alone, videos in flight could pass the limit and get the daemon
    OOM-killed mid-job.  So the least of the two counts."""
    host = _meminfo_available(proc / "meminfo")
    left = cgroup_memory_left(proc / "self" / "cgroup", cgroups)
    if left is not None and left < host:
        return left, True
    return host, False


def usable_cores(proc: Path = Path("/proc"), cgroups: Path = Path("/sys/fs/cgroup")) -> tuple[int, bool]:
    """The cores this process may keep busy, and whether a cgroup CPU quota is what bounds them.

    The CPUs it may run on (affinity, as ``taskset`` or ``CPUAffinity=`` set it), or fewer where
    a quota allows less time than that (systemd's ``CPUQuota=400%``, ``docker --cpus 4``): on a
    64-core host such a service would otherwise plan sixteen videos and their threads for four
    cores' worth of time."""
    cpus = len(os.sched_getaffinity(0))
    quota = cgroup_cpu_quota(proc / "self" / "cgroup", cgroups)
    if quota is not None and math.ceil(quota) < cpus:
        return max(1, math.ceil(quota)), True
    return cpus, False


def _meminfo_available(meminfo: Path) -> int:
    """MemAvailable (free pages alone would count the page cache as used)."""
    try:
        for line in meminfo.read_text(encoding="ascii").splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _gpu_free_bytes(device: str) -> int | None:
    """Free memory on the GPU the engines will use; None when they run on the CPU."""
    if device == "cpu":
        return None
    import torch

    if not torch.cuda.is_available():
        return None  # "auto" falls back to the CPU; "cuda:N" fails when the engine is made
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        return None
    free, _total = torch.cuda.mem_get_info(index)
    return int(free)
