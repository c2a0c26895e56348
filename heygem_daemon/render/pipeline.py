"""Stages over bounded queues: source → stage → … → sink, each in its own thread.

Decoding, face tracking, rendering and encoding overlap (the reader and writer
are ffmpeg processes fed by threads; LiteRT and torch release the GIL in
their native code), and memory is bounded by ``depth`` items per queue
whatever the video's length.  An error in any stage stops them all and is
re-raised in the caller's thread; ``check`` (the stop flag) is polled there.

A stop never waits without bound: threads get ``join_timeout_s`` to end, then
``on_hung`` kills what they may be blocked on (the ffmpeg processes: a write to
a hung encoder fails with a broken pipe), and a thread still stuck after that
is left behind (they are daemon threads) and logged.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Protocol, TypeVar

from ..logging import get_logger

log = get_logger()

_END = object()
_POLL_S = 0.1
#: how long a stopping pipeline waits for its threads, before and again after ``on_hung``
JOIN_TIMEOUT_S = 10.0

_Queue = queue.Queue[Any]
T = TypeVar("T")


def _nothing() -> None:
    return None


class Stage(Protocol):
    """One step: ``feed`` may hold items back (look-ahead) and ``flush`` releases them at the end."""

    #: the step's key in ``Pipeline.clock``
    name: str

    def feed(self, item: Any) -> Iterable[Any]: ...

    def flush(self) -> Iterable[Any]: ...


@dataclass
class MapStage:
    """A one-in, one-out stage from a plain function."""

    fn: Callable[[Any], Any]
    name: str = "map"

    def feed(self, item: Any) -> Iterable[Any]:
        return (self.fn(item),)

    def flush(self) -> Iterable[Any]:
        return ()


@dataclass
class Pipeline:
    produce: Callable[[], Any | None]
    stages: list[Stage]
    consume: Callable[[Any], None]
    depth: int = 2
    check: Callable[[], None] = _nothing
    #: the names of the source and sink steps in ``clock``
    source_name: str = "source"
    sink_name: str = "sink"
    #: seconds each step spent in its own work (not waiting on queues), by step name
    #: (``source_name``, each stage's ``name``, ``sink_name``; steps that share a name add up)
    clock: dict[str, float] = field(default_factory=dict)
    #: called in the caller's thread when the threads outlive ``join_timeout_s`` after a stop:
    #: kill what they may be blocked on (the video's ffmpeg processes)
    on_hung: Callable[[], None] = _nothing
    join_timeout_s: float = JOIN_TIMEOUT_S

    def run(self) -> None:
        queues: list[_Queue] = [queue.Queue(self.depth) for _ in range(len(self.stages) + 1)]
        stop = threading.Event()
        errors: list[BaseException] = []
        workers = [self._thread("pipeline-source", self._source, queues[0], stop, errors)]
        for index, stage in enumerate(self.stages):
            workers.append(self._thread(f"pipeline-{stage.name}", self._stage, stage,
                                        queues[index], queues[index + 1], stop, errors))
        workers.append(self._thread("pipeline-sink", self._sink, queues[-1], stop, errors))
        for worker in workers:
            worker.start()
        try:
            sink = workers[-1]
            while sink.is_alive() and not errors:
                self.check()
                sink.join(_POLL_S)
            if errors:
                raise errors[0]
        finally:
            stop.set()
            self._join(workers)

    def _thread(self, name: str, target: Callable[..., None], *args: Any) -> threading.Thread:
        return threading.Thread(target=self._guard, args=(target, *args), name=name, daemon=True)

    def _join(self, workers: list[threading.Thread]) -> None:
        """Join within ``join_timeout_s``; then ``on_hung`` and once more; then leave them, logged."""
        if _join_all(workers, self.join_timeout_s):
            return
        log.warning("pipeline_hung", threads=_alive(workers), waited_s=self.join_timeout_s)
        self.on_hung()
        if not _join_all(workers, self.join_timeout_s):
            log.error("pipeline_threads_abandoned", threads=_alive(workers))

    # -- the threads ----------------------------------------------------------------------------
    def _guard(self, target: Callable[..., None], *args: Any) -> None:
        errors, stop = args[-1], args[-2]
        try:
            target(*args[:-1])
        except BaseException as exc:  # noqa: BLE001 -- handed to the caller's thread
            errors.append(exc)
            stop.set()

    def _timed(self, key: str, fn: Callable[..., Any], *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.clock[key] = self.clock.get(key, 0.0) + time.perf_counter() - started

    def _source(self, out: _Queue, stop: threading.Event) -> None:
        while not stop.is_set():
            item = self._timed(self.source_name, self.produce)
            if not _put(out, _END if item is None else item, stop) or item is None:
                return

    def _stage(self, stage: Stage, inq: _Queue, out: _Queue, stop: threading.Event) -> None:
        while (item := _get(inq, stop)) is not None:
            if item is _END:
                for result in self._timed(stage.name, lambda: list(stage.flush())):
                    if not _put(out, result, stop):
                        return
                _put(out, _END, stop)
                return
            for result in self._timed(stage.name, lambda: list(stage.feed(item))):
                if not _put(out, result, stop):
                    return

    def _sink(self, inq: _Queue, stop: threading.Event) -> None:
        while (item := _get(inq, stop)) is not None and item is not _END:
            self._timed(self.sink_name, self.consume, item)


def _join_all(threads: list[threading.Thread], timeout_s: float) -> bool:
    """Join every thread within one shared deadline; True when all have ended."""
    deadline = time.monotonic() + timeout_s
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return not _alive(threads)


def _alive(threads: list[threading.Thread]) -> list[str]:
    return [thread.name for thread in threads if thread.is_alive()]


def _put(q: _Queue, item: object, stop: threading.Event) -> bool:
    """Put unless the pipeline is stopping; False when it is."""
    while not stop.is_set():
        try:
            q.put(item, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False


def _get(q: _Queue, stop: threading.Event) -> object | None:
    """The next item, or None when the pipeline is stopping."""
    while not stop.is_set():
        try:
            item: object = q.get(timeout=_POLL_S)
            return item
        except queue.Empty:
            continue
    return None


def read_ahead(items: Iterator[T], depth: int = 4) -> Iterator[T]:
    """``items``, produced up to ``depth`` ahead in a thread of their own.

    For a consumer that takes an iterable (the face tracker) while the producer
    has work of its own (reading a pipe, converting colours, keeping frames):
    the two overlap, and at most ``depth`` items wait in between.  An error in
    the producer is raised in the consumer; a consumer that stops early (or
    fails) stops the producer at its next item.
    """
    q: _Queue = queue.Queue(depth)
    stop = threading.Event()
    failed: list[BaseException] = []

    def produce() -> None:
        try:
            for item in items:
                if not _put(q, item, stop):
                    return
        except BaseException as exc:  # noqa: BLE001 -- handed to the consumer
            failed.append(exc)
        _put(q, _END, stop)

    thread = threading.Thread(target=produce, name="read-ahead", daemon=True)
    thread.start()
    try:
        while (item := _get(q, stop)) is not _END:
            yield item  # type: ignore[misc]
        if failed:
            raise failed[0]
    finally:
        stop.set()
        thread.join(JOIN_TIMEOUT_S)
