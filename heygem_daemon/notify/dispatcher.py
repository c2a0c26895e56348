"""Deliveries off the main loop: a bounded queue, one worker thread, retries with backoff.

A job never waits for a notification, nor does the loop: ``submit`` only puts the
delivery on the queue (and refuses it, loudly, when the queue is full).  One worker
sends what is due; a failed try is put back with twice the previous wait, so a dead
webhook delays nobody's mail.  On stop, deliveries not yet tried get one try within
a bounded time; waiting retries are dropped (logged) -- notifications are not kept
across restarts.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from ..errors import HeygemError
from ..logging import get_logger

log = get_logger()

#: the longest wait between two tries of one delivery
MAX_BACKOFF_S = 600.0


@dataclass
class Delivery:
    """One message for one channel; ``send`` raises HeygemError (or OSError) when a try fails."""

    channel: str  # "webhook" | "email"
    job: str
    #: who it goes to, as logs may show it (no secrets, no URL paths)
    target: str
    send: Callable[[], None]
    attempts: int
    backoff_s: float
    #: called once the last try failed: (kind, text) for the status page
    report_failure: Callable[[str, str], None]
    tried: int = 0
    last_error: str = ""

    def next_wait(self) -> float:
        return min(self.backoff_s * 2 ** (self.tried - 1), MAX_BACKOFF_S)


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    delivery: Delivery = field(compare=False)


class Dispatcher:
    def __init__(self, capacity: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = capacity
        self._clock = clock
        self._heap: list[_Due] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._work, name="notify", daemon=True)
        self._thread.start()

    def submit(self, delivery: Delivery) -> bool:
        """Queue ``delivery`` without waiting; False (logged, reported) when the queue is full."""
        with self._cond:
            if len(self._heap) < self.capacity and not self._stopping:
                heapq.heappush(self._heap, _Due(self._clock(), next(self._seq), delivery))
                self._cond.notify()
                return True
        log.error("notify_queue_full", channel=delivery.channel, job=delivery.job, capacity=self.capacity)
        delivery.report_failure("notify", f"{delivery.channel} for job '{delivery.job}' was not sent: "
                                          f"{self.capacity} notifications were already waiting")
        return False

    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop: what was never tried gets one try within ``timeout_s``; the rest is dropped."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("notify_worker_busy_at_stop", timeout_s=timeout_s)
        with self._cond:
            dropped, self._heap = self._heap, []
        for due in dropped:
            log.warning("notify_dropped", channel=due.delivery.channel, job=due.delivery.job,
                        target=due.delivery.target, tries=due.delivery.tried, error=due.delivery.last_error)

    # -- the worker -------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            delivery = self._next()
            if delivery is None:
                return
            self._try(delivery)

    def _next(self) -> Delivery | None:
        """The next due delivery; None when stopping and nothing untried is left."""
        with self._cond:
            while True:
                if self._stopping:
                    untried = [d for d in self._heap if d.delivery.tried == 0]
                    if not untried:
                        return None
                    first = min(untried)
                    self._heap.remove(first)
                    heapq.heapify(self._heap)
                    return first.delivery
                if self._heap and self._heap[0].at <= self._clock():
                    return heapq.heappop(self._heap).delivery
                wait = self._heap[0].at - self._clock() if self._heap else None
                self._cond.wait(wait)

    def _try(self, delivery: Delivery) -> None:
        delivery.tried += 1
        try:
            delivery.send()
        except (HeygemError, OSError) as exc:
            self._failed(delivery, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 -- a bug in one delivery must not end the worker
            log.exception("notify_crashed", channel=delivery.channel, job=delivery.job)
            self._failed(delivery, f"internal error: {exc}")
            return
        log.info("notify_sent", channel=delivery.channel, job=delivery.job, target=delivery.target,
                 tries=delivery.tried)

    def _failed(self, delivery: Delivery, error: str) -> None:
        delivery.last_error = error
        with self._cond:
            again = delivery.tried < delivery.attempts and not self._stopping
            if again:
                wait = delivery.next_wait()
                heapq.heappush(self._heap, _Due(self._clock() + wait, next(self._seq), delivery))
        if again:
            log.warning("notify_retry", channel=delivery.channel, job=delivery.job, target=delivery.target,
                        tries=delivery.tried, in_s=wait, error=error)
            return
        log.error("notify_failed", channel=delivery.channel, job=delivery.job, target=delivery.target,
                  tries=delivery.tried, error=error)
        delivery.report_failure("notify", f"{delivery.channel} for job '{delivery.job}' to {delivery.target} "
                                          f"failed after {delivery.tried} tries: {error}")
