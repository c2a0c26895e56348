"""The phone recogniser in a process of its own.

pocketsphinx's decoder holds the GIL for a whole utterance: 0.3 s for 8 s of
speech, during which a Python thread beside it got 8 % of its solo speed.  In
the daemon that stopped every other thread — the face tracking, the render
pass, the other videos in flight — whenever a job's voice or an avatar's own
sound was recognised, twice per new avatar.  Here it runs in a worker process
(one audio at a time; a caller waits on a pipe, which releases the GIL), with
the same decoder settings and the same phones as in-process
(``phones.recognize_phones``, which the worker calls).

Owned like the face-tracking workers: spawned (the daemon runs threads) on the
first use or by ``start``, stopped by ``close`` or at interpreter exit
(multiprocessing terminates daemonic children); it ignores SIGINT (a Ctrl-C in
a terminal reaches the whole process group, and the daemon decides how a stop
goes) and exits when its pipe closes, so it never outlives the daemon.  A
worker that dies is started again for the next audio; the audio it was on falls
back to loudness, as any recognition failure does.
"""

from __future__ import annotations

import multiprocessing
import signal
import threading
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from ..logging import get_logger
from ..workerproc import SPAWN, stop_worker
from .align import Phone
from .phones import PhoneRecognitionFailed, open_decoder, recognize_phones, reset_decoder

log = get_logger()

#: seconds the worker may take to start (importing numpy and pocketsphinx)
START_TIMEOUT_S = 60.0


class PhoneWorker:
    """``recognise`` = ``phones.recognize_phones``, in a worker process started once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None

    @property
    def pid(self) -> int | None:
        """The worker's process id while it runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.is_alive() else None

    def start(self) -> None:
        """Start the process now (the daemon does before it reports ready) instead of at first use."""
        with self._lock:
            self._started()

    def recognise(self, samples: np.ndarray, rate: int) -> list[Phone]:
        """Phones recognised in ``samples`` (16 kHz mono float), as ``recognize_phones`` gives them."""
        if rate != 16_000:
            raise PhoneRecognitionFailed(f"phone recognition needs 16 kHz audio, got {rate} Hz")
        with self._lock:  # one audio at a time: the caller's thread waits on the pipe, without the GIL
            try:
                conn = self._started()
                try:
                    conn.send(samples)
                except OSError:  # it died since the last audio (and was not reaped yet): a new one takes it
                    self._stop()
                    conn = self._started()
                    conn.send(samples)
                reply = conn.recv()
            except (EOFError, OSError) as exc:
                self._stop()
                raise PhoneRecognitionFailed(f"the phone recogniser's process stopped ({exc})") from exc
        if reply[0] != "ok":
            raise PhoneRecognitionFailed(reply[1])
        return [Phone(name, start, end) for name, start, end in reply[1]]

    def _started(self) -> Connection:
        if self._proc is not None and self._proc.is_alive() and self._conn is not None:
            return self._conn
        self._stop()
        parent, child = SPAWN.Pipe()
        proc = SPAWN.Process(target=_serve, args=(child,), name="phone-recogniser", daemon=True)
        proc.start()
        child.close()
        self._proc, self._conn = proc, parent
        try:
            ready = parent.poll(START_TIMEOUT_S) and parent.recv() == "ready"
        except (EOFError, OSError):  # it exited while starting (its error is on stderr)
            ready = False
        if not ready:
            self._stop()
            raise PhoneRecognitionFailed("the phone recogniser's process did not start")
        log.debug("phone_worker_started", pid=proc.pid)
        return parent

    def close(self) -> None:
        """Stop the process: the sentinel, then terminate, then kill."""
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        proc, conn, self._proc, self._conn = self._proc, self._conn, None, None
        stop_worker(proc, conn)


class PhoneWorkers:
    """Up to ``size`` PhoneWorkers for the videos in flight: a call takes an idle one, and starts
    another (up to ``size``) only when every started one is busy.

    One worker recognised every audio of the daemon in turn: with four new avatars in flight, each
    one's own sound (up to 30 s, about a second of decoding) queued behind the others' and the
    job's voice, while their tracking had long finished.  Extra workers start on demand, so a
    daemon that renders one video at a time runs one (~50 MB)."""

    def __init__(self, size: int = 1) -> None:
        self.size = max(1, size)
        self._ready = threading.Condition()
        self._idle: list[PhoneWorker] = []
        self._started: list[PhoneWorker] = []

    @property
    def pids(self) -> list[int]:
        """The running workers' process ids."""
        return [pid for pid in (w.pid for w in self._started) if pid is not None]

    def start(self) -> None:
        """Start the first worker now (the daemon does before it reports ready)."""
        worker = self._take()
        try:
            worker.start()
        finally:
            self._give(worker)

    def recognise(self, samples: np.ndarray, rate: int) -> list[Phone]:
        """As ``PhoneWorker.recognise``, on an idle worker (waiting for one when ``size`` are busy)."""
        worker = self._take()
        try:
            return worker.recognise(samples, rate)
        finally:
            self._give(worker)

    def close(self) -> None:
        """Stop every worker."""
        with self._ready:
            workers, self._idle, self._started = self._started, [], []
        for worker in workers:
            worker.close()

    def _take(self) -> PhoneWorker:
        with self._ready:
            while True:
                if self._idle:
                    return self._idle.pop()
                if len(self._started) < self.size:
                    worker = PhoneWorker()
                    self._started.append(worker)
                    return worker
                self._ready.wait()

    def _give(self, worker: PhoneWorker) -> None:
        with self._ready:
            if worker in self._started:  # not closed meanwhile
                self._idle.append(worker)
                self._ready.notify()


def _serve(conn: Connection) -> None:
    """The worker's life: recognise each audio it is sent until the sentinel or the pipe's end."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Each audio gets a decoder as fresh as in-process: one decoder carries its cepstral mean from
    # one audio to the next, and the same audio then gives other phones.  It is reset after each
    # audio, while the worker waits, not while a caller does (opening a new one cost 0.07 s of CPU).
    decoder = _open()
    conn.send("ready")
    while True:
        try:
            samples = conn.recv()
        except (EOFError, OSError):
            return
        if samples is None:
            return
        try:
            if isinstance(decoder, PhoneRecognitionFailed):
                raise decoder
            phones = recognize_phones(samples, 16_000, decoder=decoder)
        except PhoneRecognitionFailed as exc:  # sent back: the caller falls back to loudness
            conn.send(("error", str(exc)))
            decoder = _open()  # one that failed mid-utterance is not trusted to reset
        else:
            conn.send(("ok", [(p.name, p.start_s, p.end_s) for p in phones]))
            decoder = _reset(decoder)


def _reset(decoder: Any) -> Any:
    """``decoder``, which has just recognised an audio, ready for the next (a new one if it cannot
    be reset)."""
    try:
        reset_decoder(decoder)
    except PhoneRecognitionFailed:
        return _open()
    return decoder


def _open() -> Any:
    try:
        return open_decoder()
    except PhoneRecognitionFailed as exc:  # told to each caller, who falls back to loudness
        return exc
