"""Worker processes that track one video's segments side by side (``segments.py``).

Threads do not scale here: the mesh's numpy operators and the per-frame
Python hold the GIL (ARCHITECTURE §8: 4 videos as threads 253 frames/s, as
processes 480).  Each worker builds its own face mesh once and lives as long
as its tracker.  Frames travel through shared-memory slots (one per segment
in flight plus the one being filled), results (~120 KB a segment) through a
pipe.

Owned like every process here: started by the tracker, stopped by ``close``
(a sentinel, then terminate, then kill); the slot files are unlinked as soon
as every worker has mapped them, so none is left behind even after a crash.
A worker ignores SIGINT and SIGTERM (the daemon decides how a stop goes) and
exits when its pipe closes, so it never outlives the daemon.
"""

from __future__ import annotations

import mmap
import multiprocessing
import os
import signal
import tempfile
from collections import deque
from multiprocessing.connection import Connection

import cv2
import numpy as np

from ..errors import HeygemError
from ..logging import get_logger
from ..workerproc import SPAWN, stop_worker
from .facemesh import FaceMesh
from .segments import SEGMENT_FRAMES, WARMUP_FRAMES, FrameSlot, SegmentResult, track_segment

log = get_logger()

#: seconds a worker may take to start (imports, building its mesh)
START_TIMEOUT_S = 120.0


#: a slot takes a segment of frames up to this many pixels at full size (720p), so the workers
#: shrink only the face's region of them (facemesh.exact_shrink); larger frames are shrunk whole
#: by the caller.  Pages of a slot are used only as far as frames fill them.
FULL_FRAME_PIXELS = 1280 * 720

#: worker processes one video's tracker may use at most (a 16-core host: 8 keep up with its encoder)
MAX_PROCESSES = 8


def tracking_processes(cores_per_video: int) -> int:
    """Worker processes for one video's tracker, from the cores it has (runtime.RuntimePlan).

    With two cores or fewer a video's decode, render and encode already fill them, and the
    workers' hand-over costs more than they give: track in-process (0).  Beyond that, every
    core but the two the decoder and encoder use."""
    return 0 if cores_per_video < 3 else min(MAX_PROCESSES, cores_per_video - 2)


class TrackingWorkerError(HeygemError, RuntimeError):
    """A tracking worker failed or exited: this video fails (its siblings go on), and the tracker
    starts a new worker for the next one."""

    kind = "tracking"


class MeshWorkers:
    """``processes`` face-mesh workers for one tracker (one video at a time)."""

    def __init__(self, processes: int, *, max_side: int, threads: int = 1,
                 min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5) -> None:
        if processes < 1:
            raise ValueError("MeshWorkers needs at least one process")
        self._slot_bytes = (SEGMENT_FRAMES + WARMUP_FRAMES) * max(max_side * max_side, FULL_FRAME_PIXELS) * 3
        self._maps: list[mmap.mmap] = []
        self._done: list[SegmentResult] = []
        self._conns: list[Connection] = []
        self._procs: list[multiprocessing.process.BaseProcess] = []
        paths = [self._new_slot() for _ in range(processes + 1)]
        try:
            for number in range(processes):
                parent, child = SPAWN.Pipe()
                proc = SPAWN.Process(
                    target=_serve, name=f"face-tracker-{number}", daemon=True,
                    args=(child, paths, self._slot_bytes, threads, min_detection_confidence,
                          min_tracking_confidence))
                proc.start()
                child.close()
                self._conns.append(parent)
                self._procs.append(proc)
            for conn in self._conns:
                try:
                    ready = conn.poll(START_TIMEOUT_S) and conn.recv() == "ready"
                except (EOFError, OSError):  # it exited while starting (its error is on stderr)
                    ready = False
                if not ready:
                    raise TrackingWorkerError("A face-tracking worker process did not start.",
                                              hint="Its error is in the daemon's log (stderr).")
        except BaseException:
            self.close()
            raise
        finally:
            for path in paths:
                os.unlink(path)
        self._idle = deque(range(processes))
        self._free = deque(range(processes + 1))
        self._flight: deque[tuple[int, int]] = deque()  # (worker, slot), oldest first
        self._filling: int | None = None
        self._shape: tuple[int, ...] = ()
        log.debug("tracking_workers_started", processes=processes)

    @property
    def processes(self) -> int:
        return len(self._procs)

    def alive(self) -> bool:
        return bool(self._procs) and all(proc.is_alive() for proc in self._procs)

    def _new_slot(self) -> str:
        folder = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None  # RAM-backed where there is one
        fd, path = tempfile.mkstemp(prefix="heygem-faces-", suffix=".frames", dir=folder)
        try:
            os.ftruncate(fd, self._slot_bytes)
            self._maps.append(mmap.mmap(fd, self._slot_bytes))
        finally:
            os.close(fd)
        return path

    # -- segments.Runner -------------------------------------------------------------------------
    def fits(self, shape: tuple[int, int, int], count: int) -> bool:
        return count * int(np.prod(shape)) <= self._slot_bytes

    def slot(self, shape: tuple[int, int, int], count: int) -> np.ndarray:
        if not self.fits(shape, count):
            raise ValueError(f"{count} frames of {shape} do not fit a tracking slot")
        self._filling = self._free.popleft()
        self._shape = (count, *shape)
        return np.ndarray(self._shape, np.uint8, buffer=self._maps[self._filling])

    def submit(self, count: int, warm: int, in_flight: int, shrink: int) -> None:
        assert self._filling is not None
        while not self._idle or len(self._flight) >= in_flight:
            self._done.append(self._receive())
        worker, slot = self._idle.popleft(), self._filling
        self._filling = None
        try:
            self._conns[worker].send((slot, self._shape[1:], count, warm, shrink))
        except OSError as exc:  # it died between videos' checks
            self._idle.append(worker)
            self._free.append(slot)
            raise TrackingWorkerError(f"Face-tracking worker {worker} stopped while tracking this video.",
                                      hint="Run the job again; if it recurs, see the daemon's log.") from exc
        self._flight.append((worker, slot))

    def lead(self, frames: FrameSlot) -> list[np.ndarray]:
        # views of the submitted slot: nothing writes a slot but the next _open, which reads these
        # first (even when it reopens this very slot, its lead frames lie past the ones written)
        return list(frames)

    def results(self, wait: bool) -> list[SegmentResult]:
        done, self._done = self._done, []
        while self._flight and (wait or self._conns[self._flight[0][0]].poll()):
            done.append(self._receive())
        return done

    def drain(self) -> None:
        """Wait out the segments in flight and drop them: the next video starts clean."""
        while self._flight:
            try:
                self._receive()
            except TrackingWorkerError:
                pass
        self._done = []
        if self._filling is not None:
            self._free.append(self._filling)
            self._filling = None

    def _receive(self) -> SegmentResult:
        worker, slot = self._flight.popleft()
        try:
            reply = self._conns[worker].recv()
        except (EOFError, OSError) as exc:
            raise TrackingWorkerError(f"Face-tracking worker {worker} stopped while tracking this video.",
                                      hint="Run the job again; if it recurs, see the daemon's log.") from exc
        finally:
            self._idle.append(worker)
            self._free.append(slot)
        if reply[0] != "ok":
            raise TrackingWorkerError(f"Face tracking failed in worker {worker}: {reply[1]}")
        return SegmentResult(reply[1], reply[2])

    # -- lifetime ----------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop every worker: the sentinel, then terminate, then kill; release the slots."""
        for conn in self._conns:  # every worker told first: they end side by side
            try:
                conn.send(None)
            except OSError:
                pass
        for proc, conn in zip(self._procs, self._conns):
            stop_worker(proc, conn)
        for mapped in self._maps:
            try:
                mapped.close()
            except BufferError:  # a slot's array is still referenced: it goes with it
                pass
        self._procs, self._conns, self._maps = [], [], []


def _serve(conn: Connection, paths: list[str], slot_bytes: int, threads: int, detect: float,
           track: float) -> None:
    """A worker's life: map the slots, build the mesh, then track segments until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    maps = []
    for path in paths:
        with open(path, "r+b") as fh:
            maps.append(mmap.mmap(fh.fileno(), slot_bytes))
    # one core's worth of work: OpenCV's pool would split each small warp and shrink across
    # threads that wait for each other (CPU time the mesh needs, on a box whose cores are all busy)
    cv2.setNumThreads(threads)
    mesh = FaceMesh(min_detection_confidence=detect, min_tracking_confidence=track, threads=threads)
    conn.send("ready")
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        slot, shape, count, warm, shrink = task
        frames = np.ndarray((count, *shape), np.uint8, buffer=maps[slot])
        try:
            result = track_segment(mesh, frames, warm, shrink)
        except Exception as exc:  # sent back: the parent raises it for the video being tracked
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
            continue
        conn.send(("ok", result.marks, result.present))
