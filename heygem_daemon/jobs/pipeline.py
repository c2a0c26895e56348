"""Stages over bounded queues: source → stage → … → sink, each in its own thread.

Decoding, face tracking, rendering and encoding overlap (the reader and writer
are ffmpeg processes fed by threads; LiteRT and torch release the GIL in
their native code), and memory is bounded by ``depth`` items per queue
whatever the video's length.  An error in any stage stops them all and is
re-raised in the caller's thread; ``check`` (the stop flag) is polled there.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol

_END = object()
_POLL_S = 0.1


class Stage(Protocol):
    """One step: ``feed`` may hold items back (look-ahead) and ``flush`` releases them at the end."""

    def feed(self, item: Any) -> Iterable[Any]: ...

    def flush(self) -> Iterable[Any]: ...


@dataclass
class MapStage:
    """A one-in, one-out stage from a plain function."""

    fn: Callable[[Any], Any]

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
    check: Callable[[], None] = lambda: None
    #: seconds each step spent in its own work (not waiting on queues): "source", 0..n-1, "sink"
    clock: dict[Any, float] = field(default_factory=dict)

    def run(self) -> None:
        queues = [queue.Queue(self.depth) for _ in range(len(self.stages) + 1)]
        stop = threading.Event()
        errors: list[BaseException] = []
        workers = [threading.Thread(target=self._guard, args=(self._source, queues[0], stop, errors),
                                    name="pipeline-source", daemon=True)]
        for index, stage in enumerate(self.stages):
            workers.append(threading.Thread(
                target=self._guard, args=(self._stage, index, stage, queues[index], queues[index + 1], stop, errors),
                name=f"pipeline-stage{index}", daemon=True))
        workers.append(threading.Thread(target=self._guard, args=(self._sink, queues[-1], stop, errors),
                                        name="pipeline-sink", daemon=True))
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
            for worker in workers:
                worker.join()

    # -- the threads ----------------------------------------------------------------------------
    def _guard(self, target, *args) -> None:
        errors, stop = args[-1], args[-2]
        try:
            target(*args[:-1])
        except BaseException as exc:  # noqa: BLE001 -- handed to the caller's thread
            errors.append(exc)
            stop.set()

    def _timed(self, key, fn, *args):
        started = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.clock[key] = self.clock.get(key, 0.0) + time.perf_counter() - started

    def _source(self, out: queue.Queue, stop: threading.Event) -> None:
        while not stop.is_set():
            item = self._timed("source", self.produce)
            if not _put(out, _END if item is None else item, stop) or item is None:
                return

    def _stage(self, index: int, stage: Stage, inq: queue.Queue, out: queue.Queue, stop: threading.Event) -> None:
        while (item := _get(inq, stop)) is not None:
            if item is _END:
                for result in self._timed(index, lambda: list(stage.flush())):
                    if not _put(out, result, stop):
                        return
                _put(out, _END, stop)
                return
            for result in self._timed(index, lambda: list(stage.feed(item))):
                if not _put(out, result, stop):
                    return

    def _sink(self, inq: queue.Queue, stop: threading.Event) -> None:
        while (item := _get(inq, stop)) is not None and item is not _END:
            self._timed("sink", self.consume, item)


def _put(q: queue.Queue, item: object, stop: threading.Event) -> bool:
    """Put unless the pipeline is stopping; False when it is."""
    while not stop.is_set():
        try:
            q.put(item, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue, stop: threading.Event) -> object | None:
    """The next item, or None when the pipeline is stopping."""
    while not stop.is_set():
        try:
            return q.get(timeout=_POLL_S)
        except queue.Empty:
            continue
    return None
