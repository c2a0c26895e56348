"""Three stages over bounded queues: read → transform → write.

Decoding, rendering and encoding overlap (the reader and writer are ffmpeg
processes fed by threads), and memory is bounded by ``depth`` batches whatever
the video's length.  An error in any stage stops all three and is re-raised in
the caller's thread.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")
U = TypeVar("U")

_END = object()
_POLL_S = 0.2


@dataclass
class StageClock:
    """Seconds each stage spent in its own work (not waiting on queues)."""

    read: float = 0.0
    transform: float = 0.0
    write: float = 0.0


@dataclass
class _Failure:
    error: BaseException


@dataclass
class Pipeline(Generic[T, U]):
    produce: Callable[[], T | None]
    transform: Callable[[T], U]
    consume: Callable[[U], None]
    depth: int = 3
    check: Callable[[], None] = lambda: None
    clock: StageClock = field(default_factory=StageClock)

    def run(self) -> None:
        inq: queue.Queue = queue.Queue(self.depth)
        outq: queue.Queue = queue.Queue(self.depth)
        stop = threading.Event()
        reader = threading.Thread(target=self._read, args=(inq, stop), name="pipeline-read", daemon=True)
        writer = threading.Thread(target=self._write, args=(outq, stop), name="pipeline-write", daemon=True)
        writer_error: list[BaseException] = []
        self._writer_error = writer_error
        reader.start()
        writer.start()
        try:
            for item in self._items(inq):
                self.check()
                started = time.perf_counter()
                result = self.transform(item)
                self.clock.transform += time.perf_counter() - started
                self._put(outq, result, stop, writer)
            self._put(outq, _END, stop, writer)
            writer.join()
            if writer_error:
                raise writer_error[0]
        finally:
            stop.set()
            reader.join()
            writer.join()

    def _items(self, inq: queue.Queue) -> Iterator[T]:
        while True:
            item = inq.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item

    def _put(self, q: queue.Queue, item: object, stop: threading.Event, writer: threading.Thread) -> None:
        while True:
            if self._writer_error:
                raise self._writer_error[0]
            try:
                q.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                if not writer.is_alive():
                    raise RuntimeError("writer stage ended unexpectedly") from None

    def _read(self, inq: queue.Queue, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                started = time.perf_counter()
                item = self.produce()
                self.clock.read += time.perf_counter() - started
                if item is None:
                    self._offer(inq, _END, stop)
                    return
                self._offer(inq, item, stop)
        except BaseException as exc:  # noqa: BLE001 -- handed to the caller's thread
            self._offer(inq, _Failure(exc), stop)

    def _offer(self, q: queue.Queue, item: object, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                q.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def _write(self, outq: queue.Queue, stop: threading.Event) -> None:
        try:
            while True:
                try:
                    item = outq.get(timeout=_POLL_S)
                except queue.Empty:
                    if stop.is_set():
                        return
                    continue
                if item is _END:
                    return
                started = time.perf_counter()
                self.consume(item)
                self.clock.write += time.perf_counter() - started
        except BaseException as exc:  # noqa: BLE001 -- handed to the caller's thread
            self._writer_error.append(exc)
