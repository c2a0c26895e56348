"""The dispatcher: bounded, never blocking, backing off, and bounded at stop too."""

from __future__ import annotations

import threading

from structlog.testing import capture_logs

from heygem_daemon.notify.dispatcher import MAX_BACKOFF_S, Delivery, Dispatcher
from heygem_daemon.notify.errors import NotificationError


def _delivery(send, notices: list, attempts: int = 3, backoff_s: float = 1.0) -> Delivery:
    return Delivery("webhook", "job", "http://receiver", send, attempts, backoff_s,
                    lambda kind, text: notices.append((kind, text)))


def test_waits_double_after_each_failed_try_up_to_ten_minutes():
    """backoff_s, 2×, 4×, ... capped at MAX_BACKOFF_S."""
    delivery = _delivery(lambda: None, [], backoff_s=5.0)
    waits = []
    for tried in range(1, 10):
        delivery.tried = tried
        waits.append(delivery.next_wait())
    assert [5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, MAX_BACKOFF_S, MAX_BACKOFF_S] == waits


def test_a_full_queue_refuses_at_once_and_says_so():
    """Capacity 2, nothing started: the third submit returns False at once, logged and reported."""
    notices: list = []
    dispatcher = Dispatcher(capacity=2)
    with capture_logs() as logs:
        assert [True, True, False] == [dispatcher.submit(_delivery(lambda: None, notices)) for _ in range(3)]
    assert ["notify_queue_full"] == [e["event"] for e in logs]
    assert [("notify", "webhook for job 'job' was not sent: 2 notifications were already waiting")] == notices
    dispatcher.close(timeout_s=1)


def test_at_stop_untried_deliveries_get_one_try_and_waiting_retries_are_dropped():
    """close(): a delivery never tried is tried once; one waiting for its retry is dropped, logged."""
    sent, notices = [], []
    dispatcher = Dispatcher(capacity=10)
    failing_once = threading.Event()

    def fails() -> None:
        failing_once.set()
        raise NotificationError("down")

    dispatcher.start()
    dispatcher.submit(_delivery(fails, notices, backoff_s=60.0))
    assert failing_once.wait(5)
    dispatcher.submit(_delivery(lambda: sent.append("late"), notices))
    with capture_logs() as logs:
        dispatcher.close(timeout_s=5)
    assert ["late"] == sent
    assert ["notify_dropped"] == [e["event"] for e in logs if e["event"] != "notify_sent"]


def test_a_bug_in_one_delivery_does_not_stop_the_next():
    """A delivery raising something unexpected is reported; the worker goes on with the next."""
    sent, notices = [], []
    dispatcher = Dispatcher(capacity=10)
    dispatcher.start()
    dispatcher.submit(_delivery(lambda: 1 / 0, notices, attempts=1))
    dispatcher.submit(_delivery(lambda: sent.append("next"), notices))
    dispatcher.close(timeout_s=5)
    assert ["next"] == sent
    assert "internal error: division by zero" in notices[0][1]
