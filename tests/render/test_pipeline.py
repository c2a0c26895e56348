"""render/pipeline.py in process: stages over bounded queues, errors, stops that never hang."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from structlog.testing import capture_logs

from heygem_daemon.errors import MediaError, StopRequested
from heygem_daemon.render.pipeline import MapStage, Pipeline, read_ahead
from heygem_daemon.media.frames import FrameWriter


def _stop_after(seconds: float):
    """A ``check`` that asks for a forced stop once ``seconds`` have passed."""
    deadline = time.monotonic() + seconds

    def check() -> None:
        if time.monotonic() > deadline:
            raise StopRequested()

    return check


def _endless():
    """A source that never ends."""
    count = iter(range(10**9))
    return lambda: next(count)


def _counting(limit: int | None = None):
    """A source of 0, 1, 2, ... (ending after ``limit`` items) that records how many it made."""
    made: list[int] = []

    def produce() -> int | None:
        if limit is not None and len(made) >= limit:
            return None
        made.append(len(made))
        return made[-1]

    return produce, made


def _no_pipeline_threads() -> bool:
    return not any(t.name.startswith("pipeline-") for t in threading.enumerate())


class _Pairs:
    """A look-ahead stage: holds one item back and emits pairs; flush releases the last one alone."""

    name = "pairs"

    def __init__(self) -> None:
        self.held: list[int] = []

    def feed(self, item: int):
        self.held.append(item)
        if len(self.held) == 2:
            pair, self.held = tuple(self.held), []
            return [pair]
        return []

    def flush(self):
        return [tuple(self.held)] if self.held else []


def test_items_pass_every_stage_in_order_and_flush_releases_what_a_stage_held():
    """source → look-ahead → map → sink: every item arrives once, in order; the clock times each step by name."""
    produce, _ = _counting(limit=5)
    got: list[tuple[int, ...]] = []
    tens = MapStage(lambda pair: tuple(10 * x for x in pair), name="tens")
    pipeline = Pipeline(produce, [_Pairs(), tens], got.append, source_name="count", sink_name="collect")
    pipeline.run()
    assert [(0, 10), (20, 30), (40,)] == got
    assert {"count", "pairs", "tens", "collect"} == set(pipeline.clock)
    assert _no_pipeline_threads()


@pytest.mark.parametrize("where", ["source", "stage", "sink"])
def test_an_error_in_any_step_is_raised_in_the_caller_and_stops_the_rest(where):
    """The first error, wherever it happens, comes out of run(); the endless source stops and
    every thread ends (no on_hung needed)."""
    produce, made = _counting()

    def fail_at_3(item):
        if item == 3:
            raise ValueError(f"{where} broke")
        return item

    def source():
        return fail_at_3(produce()) if where == "source" else produce()

    stages = [MapStage(fail_at_3 if where == "stage" else (lambda item: item))]
    sink = fail_at_3 if where == "sink" else (lambda item: None)
    hung = []
    pipeline = Pipeline(source, stages, sink, depth=2, on_hung=lambda: hung.append(1))
    with pytest.raises(ValueError, match=f"{where} broke"):
        pipeline.run()
    assert [] == hung
    assert _no_pipeline_threads()
    assert len(made) < 20


def test_a_stop_request_from_check_ends_the_run_promptly():
    """check() raising StopRequested (the daemon's forced stop) ends an endless run within a poll or two."""
    produce, _ = _counting()
    stop = threading.Event()
    timer = threading.Timer(0.3, stop.set)

    def check():
        if stop.is_set():
            raise StopRequested()

    pipeline = Pipeline(produce, [MapStage(lambda item: item)], lambda item: time.sleep(0.001), check=check)
    timer.start()
    started = time.monotonic()
    with pytest.raises(StopRequested):
        pipeline.run()
    assert time.monotonic() - started < 0.3 + 1.0
    assert _no_pipeline_threads()


def test_queues_are_bounded_whatever_the_source_could_give():
    """A sink that does not take: the endless source makes at most depth items per queue, plus the
    one each thread holds; memory is bounded by the queues, not by the video's length."""
    produce, made = _counting()
    release = threading.Event()
    depth = 2
    peak: list[int] = []
    deadline = time.monotonic() + 0.5

    def check() -> None:  # after 0.5 s: note how many were made, let the sink go, stop
        if time.monotonic() > deadline:
            peak.append(len(made))
            release.set()
            raise StopRequested()

    pipeline = Pipeline(produce, [MapStage(lambda item: item)], lambda item: release.wait(), depth=depth,
                        check=check)
    with pytest.raises(StopRequested):
        pipeline.run()
    queues, threads = 2, 3  # source → q0 → stage → q1 → sink
    assert peak[0] <= queues * depth + threads
    assert _no_pipeline_threads()


def test_a_forced_stop_returns_within_the_bound_when_the_sink_blocks_forever():
    """A sink stuck for good (no process to kill): run() still raises StopRequested within
    two join timeouts, calls on_hung once, and logs the thread it leaves behind."""
    release = threading.Event()
    hung_calls = []
    pipeline = Pipeline(_endless(), [], lambda item: release.wait(), depth=1, check=_stop_after(0.2),
                        on_hung=lambda: hung_calls.append(1), join_timeout_s=0.3)
    started = time.monotonic()
    try:
        with capture_logs() as logs, pytest.raises(StopRequested):
            pipeline.run()
        elapsed = time.monotonic() - started
    finally:
        release.set()
    assert elapsed < 0.2 + 2 * 0.3 + 1.0
    assert [1] == hung_calls
    assert ["pipeline_hung", "pipeline_threads_abandoned"] == [e["event"] for e in logs]
    assert ["pipeline-sink"] == logs[-1]["threads"]


def _ffmpeg_children() -> list[int]:
    return [p.pid for p in psutil.Process().children(recursive=True)
            if p.name() == "ffmpeg" and p.status() != psutil.STATUS_ZOMBIE]


def test_a_hung_encoder_is_killed_and_a_forced_stop_returns(tmp_path: Path):
    """An encoder that stops reading (SIGSTOPped ffmpeg): the sink blocks on a full pipe, the
    forced stop times out the join, on_hung kills ffmpeg, the sink's write fails and every
    thread ends; no ffmpeg survives and the partial output is removed."""
    frame = np.zeros((120, 160, 3), dtype=np.uint8)
    out = tmp_path / "out.mp4"
    started = time.monotonic()
    with pytest.raises(StopRequested):
        with FrameWriter(out, (160, 120), "25", audio_path=None, duration_s=1000.0, crf=23, preset="ultrafast",
                         pad_audio=False) as writer:
            os.kill(writer._proc.proc.pid, signal.SIGSTOP)
            pipeline = Pipeline(lambda: frame, [], writer.write, depth=1, check=_stop_after(0.5),
                                on_hung=writer.kill, join_timeout_s=0.5)
            with capture_logs() as logs:
                pipeline.run()
    assert time.monotonic() - started < 0.5 + 2 * 0.5 + 4.0
    assert ["pipeline_hung"] == [e["event"] for e in logs if e["event"].startswith("pipeline")]
    assert not any(t.name.startswith("pipeline-") for t in threading.enumerate())
    assert [] == _ffmpeg_children()
    assert not out.exists()


def test_read_ahead_gives_every_item_in_order_from_a_bounded_thread():
    """Items come in order; the producer runs at most ``depth`` items ahead of the consumer."""
    produced: list[int] = []

    def items():
        for i in range(50):
            produced.append(i)
            yield i

    seen = []
    for item in read_ahead(items(), depth=3):
        time.sleep(0.002)
        # taken + up to 3 queued + 1 in the producer's hand
        assert len(produced) <= item + 1 + 3 + 1
        seen.append(item)
    assert seen == list(range(50))


def test_read_ahead_raises_the_producers_error_in_the_consumer():
    """A decoder that fails mid-way fails the consumer's loop, after the items before it."""

    def items():
        yield 1
        yield 2
        raise MediaError("broken.mp4 could not be decoded.")

    seen = []
    with pytest.raises(MediaError, match="broken.mp4"):
        for item in read_ahead(items()):
            seen.append(item)
    assert seen == [1, 2]


def test_a_consumer_that_stops_early_stops_the_producer():
    """Breaking out of the loop (or failing in it) leaves no thread behind producing forever."""

    def endless():
        i = 0
        while True:
            yield i
            i += 1

    before = {t.ident for t in threading.enumerate()}
    stream = read_ahead(endless(), depth=2)
    assert [next(stream) for _ in range(5)] == [0, 1, 2, 3, 4]
    stream.close()
    assert [t.name for t in threading.enumerate() if t.ident not in before and t.is_alive()] == []
