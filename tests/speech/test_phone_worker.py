"""The phone recogniser in its own process: the same phones as in-process, without holding the
daemon's GIL, replaced when it dies, gone when closed."""

from __future__ import annotations

import os
import signal
import threading
import time

import psutil
import pytest

from heygem_daemon.media.audio import decode_audio
from heygem_daemon.settings import LimitSettings
from heygem_daemon.speech.phone_worker import PhoneWorker, PhoneWorkers
from heygem_daemon.speech.phones import PhoneRecognitionFailed, recognize_phones
from tests.support.media import sample_media

pytest.importorskip("pocketsphinx")


@pytest.fixture(scope="module")
def speech():
    clip = decode_audio(sample_media("audio_1.wav"), LimitSettings())
    assert clip.sample_rate == 16_000
    return clip.samples


@pytest.fixture
def worker():
    made = PhoneWorker()
    yield made
    made.close()


def test_the_worker_gives_the_phones_recognised_in_process_every_time(worker, speech):
    """Each audio gets a fresh decoder, as in-process: the same speech twice gives the same phones."""
    here = recognize_phones(speech, 16_000)
    assert len(here) > 10
    assert worker.recognise(speech, 16_000) == here
    assert worker.recognise(speech[: len(speech) // 2], 16_000) == recognize_phones(speech[: len(speech) // 2], 16_000)
    assert worker.recognise(speech, 16_000) == here


def _spins_during(work) -> int:
    """How far a pure-Python loop in another thread gets while ``work`` runs."""
    count, done = [0], threading.Event()

    def spin() -> None:
        while not done.is_set():
            count[0] += 1

    thread = threading.Thread(target=spin)
    thread.start()
    started = time.perf_counter()
    try:
        work()
    finally:
        done.set()
        thread.join()
    return count[0] / (time.perf_counter() - started)


def test_other_threads_run_while_the_worker_recognises(worker, speech):
    """In-process, pocketsphinx holds the GIL for the whole audio and a thread beside it all but
    stops; with the worker the thread runs on (at least twice the rate, here several times)."""
    worker.start()
    in_process = _spins_during(lambda: recognize_phones(speech, 16_000))
    in_worker = _spins_during(lambda: worker.recognise(speech, 16_000))
    assert in_worker > 2 * in_process


def test_a_worker_that_died_is_replaced_for_the_next_audio(worker, speech):
    """Killed between two audios (an OOM kill): the next audio starts a new worker and gets its phones."""
    first = worker.recognise(speech, 16_000)
    child = psutil.Process(worker.pid)
    os.kill(child.pid, signal.SIGKILL)
    psutil.wait_procs([child], timeout=10)  # dead, not yet reaped: its pipe is what tells
    assert worker.recognise(speech, 16_000) == first
    assert worker.pid not in (None, child.pid)


def test_close_leaves_no_process_behind(speech):
    """The worker process ends with close; a wrong sample rate is refused before it is used."""
    worker = PhoneWorker()
    with pytest.raises(PhoneRecognitionFailed, match="16 kHz"):
        worker.recognise(speech, 44_100)
    worker.recognise(speech[:16_000], 16_000)
    child = psutil.Process(worker.pid)
    worker.close()
    assert worker.pid is None
    assert child.pid not in [p.pid for p in psutil.Process().children()]


def _side_by_side(pool: PhoneWorkers, clips: list) -> list:
    """Each clip recognised on its own thread, all at once (videos in flight)."""
    results: list = [None] * len(clips)
    barrier = threading.Barrier(len(clips))

    def run(i: int) -> None:
        barrier.wait()
        results[i] = pool.recognise(clips[i], 16_000)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(clips))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def test_videos_in_flight_get_workers_of_their_own(speech):
    """A pool of two recognises two audios that arrive together in two processes, each with the
    phones it gets in-process; a pool of one takes them in turn in one process."""
    clips = [speech, speech[: len(speech) // 2]]
    expected = [recognize_phones(clip, 16_000) for clip in clips]
    for size, processes in ((2, 2), (1, 1)):
        pool = PhoneWorkers(size)
        try:
            assert _side_by_side(pool, clips) == expected
            assert len(pool.pids) == processes
        finally:
            pool.close()


def test_one_video_at_a_time_starts_one_worker(speech):
    """Extra workers start only when every started one is busy: audios one after another use one
    process however large the pool may grow; close ends them all."""
    pool = PhoneWorkers(4)
    try:
        pool.start()
        first = pool.pids
        for clip in (speech[:16_000], speech[:32_000], speech[:16_000]):
            pool.recognise(clip, 16_000)
        assert pool.pids == first and len(first) == 1
        _side_by_side(pool, [speech[:16_000]] * 3)
        children = [psutil.Process(pid) for pid in pool.pids]
        assert len(children) == 3
    finally:
        pool.close()
    psutil.wait_procs(children, timeout=10)
    assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)
