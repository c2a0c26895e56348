"""Deliveries off the main loop: a bounded queue, one worker thread, retries with backoff.

A job never waits for a notification, nor does the loop: ``submit`` only puts the
delivery on the queue (and refuses it, loudly, when the queue is full).  One worker
sends what is due; a failed try is put back with twice the previous wait, so a dead
webhook delays nobody's mail.  On stop, deliveries not yet tried get one try within
a bounded time; waiting retries stay in the notification spool (spool.py) and are
sent by the next start.  A spooled delivery tells its spool when it is settled (sent,
or given up after its last try) and how many tries it has had, through callbacks, so
this module knows nothing of files.
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
    #: the delivery id (X-Heygem-Delivery); "" for one that is not spooled.  The same id is
    #: queued once, however often the spool is looked at
    id: str = ""
    #: called once it is sent or given up: the spool forgets it
    settled: Callable[[], None] | None = None
    #: called after a failed try that will be retried: (tries so far, error), kept for a restart
    retrying: Callable[[int, str], None] | None = None

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
        #: ids of the spooled deliveries queued or being sent now
        self._known: set[str] = set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._work, name="notify", daemon=True)
        self._thread.start()

    def submit(self, delivery: Delivery) -> bool:
        """Queue ``delivery`` without waiting; False (logged, reported) when the queue is full."""
        with self._cond:
            if delivery.id and delivery.id in self._known:
                return True  # queued already (the spool was looked at again)
            if len(self._heap) < self.capacity and not self._stopping:
                heapq.heappush(self._heap, _Due(self._clock(), next(self._seq), delivery))
                if delivery.id:
                    self._known.add(delivery.id)
                self._cond.notify()
                return True
            if self._stopping:
                return False  # spooled: the next start sends it
        log.error("notify_queue_full", channel=delivery.channel, job=delivery.job, capacity=self.capacity)
        delivery.report_failure("notify", f"{delivery.channel} for job '{delivery.job}' was not sent: "
                                          f"{self.capacity} notifications were already waiting")
        self._settle(delivery)
        return False

    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop: what was never tried gets one try within ``timeout_s``; the rest stays spooled
        for the next start (or, not spooled, is dropped)."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("notify_worker_busy_at_stop", timeout_s=timeout_s)
        with self._cond:
            dropped, self._heap = self._heap, []
            self._known.clear()
        for due in dropped:
            d = due.delivery
            log.warning("notify_kept_for_restart" if d.id else "notify_dropped", channel=d.channel, job=d.job,
                        target=d.target, tries=d.tried, error=d.last_error, delivery=d.id or None)

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
                 tries=delivery.tried, delivery=delivery.id or None)
        self._settle(delivery)

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
            self._call(delivery.retrying, delivery, delivery.tried, error)
            return
        if delivery.tried < delivery.attempts:  # stopping: a spooled one is tried again by the next start
            log.warning("notify_kept_for_restart" if delivery.id else "notify_dropped", channel=delivery.channel,
                        job=delivery.job, target=delivery.target, tries=delivery.tried, error=error,
                        delivery=delivery.id or None)
            self._call(delivery.retrying, delivery, delivery.tried, error)
            with self._cond:
                self._known.discard(delivery.id)
            return
        log.error("notify_failed", channel=delivery.channel, job=delivery.job, target=delivery.target,
                  tries=delivery.tried, error=error)
        delivery.report_failure("notify", f"{delivery.channel} for job '{delivery.job}' to {delivery.target} "
                                          f"failed after {delivery.tried} tries: {error}")
        self._settle(delivery)

    def _settle(self, delivery: Delivery) -> None:
        with self._cond:
            self._known.discard(delivery.id)
        self._call(delivery.settled, delivery)

    @staticmethod
    def _call(callback: Callable[..., None] | None, delivery: Delivery, *args: object) -> None:
        """A spool that cannot be written must not end the worker: at worst the delivery is sent
        again after a restart (receivers de-duplicate) or its try count starts lower."""
        if callback is None:
            return
        try:
            callback(*args)
        except OSError as exc:
            log.error("notify_spool_unwritable", channel=delivery.channel, job=delivery.job, error=str(exc))
