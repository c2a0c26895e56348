"""The webhook: a signed JSON POST received by a real HTTP server on 127.0.0.1, retried with
backoff, never blocking the caller, failures logged and put on the page, the secret never logged."""

from __future__ import annotations

import json
import time

from structlog.testing import capture_logs

from heygem_daemon.notify import webhook
from heygem_daemon.notify.announce import Announcer
from heygem_daemon.notify.event import read_event
from heygem_daemon.settings import NotifySettings
from tests.support.daemon_wait import wait_for
from tests.support.notify_servers import WebhookReceiver

SECRET = "hook-secret-never-logged"


def _settings(url: str, **webhook_keys: object) -> NotifySettings:
    return NotifySettings.model_validate({"webhook": {"url": url, "secret": SECRET, **webhook_keys}})


def test_a_published_job_is_posted_as_json_with_a_signature_the_receiver_can_check(published, dispatcher, notices):
    """The receiver gets one POST: the job, its status, team, outputs and ERROR.txt's first lines,
    with X-Heygem-Signature = t=<time>,v1=HMAC-SHA256(secret, "<t>." + body) that verifies."""
    with WebhookReceiver() as receiver:
        event = read_event(published, team="hr", host="box", status="partial")
        Announcer(_settings(receiver.url), dispatcher).job_published(event, [], notices)
        wait_for(lambda: receiver.requests, 10)
    [request] = receiver.requests
    assert webhook.verify(SECRET.encode(), request.headers["X-Heygem-Signature"], request.body, now=time.time())
    assert not webhook.verify(b"another secret", request.headers["X-Heygem-Signature"], request.body, now=time.time())
    body = json.loads(request.body)
    assert ("job.finished", "Quarterly update", "partial", "hr") == (body["event"], body["job"], body["status"],
                                                                      body["team"])
    assert ["alice_voice.mp4"] == body["outputs"]
    assert "- bob.mov with voice.wav: no face was found in any frame" in body["errors"]
    assert ("job.finished", body["delivery_id"]) == (request.headers["X-Heygem-Event"],
                                                     request.headers["X-Heygem-Delivery"])
    assert [] == notices.rows


def test_a_tampered_body_or_an_old_timestamp_fails_verification():
    """verify() refuses a body that is not the one signed, and a signature older than its tolerance."""
    body = b'{"job": "a"}'
    header = webhook.sign(b"k", 1_000_000, body)
    assert webhook.verify(b"k", header, body, now=1_000_010)
    assert not webhook.verify(b"k", header, b'{"job": "b"}', now=1_000_010)
    assert not webhook.verify(b"k", header, body, now=1_000_000 + 301)


def test_a_failing_receiver_is_retried_with_growing_waits_until_it_answers(published, dispatcher, notices):
    """HTTP 500 twice, then 200: three tries, the second wait twice the first, the same delivery id
    each time, each try signed afresh; nothing reaches the page."""
    with WebhookReceiver(answers=[500, 503]) as receiver, capture_logs() as logs:
        event = read_event(published, team="", host="box", status="failed")
        Announcer(_settings(receiver.url, backoff_s=0.3), dispatcher).job_published(event, [], notices)
        wait_for(lambda: len(receiver.requests) == 3, 15)
        wait_for(lambda: any(e["event"] == "notify_sent" for e in logs), 5)
    first, second, third = (r.at for r in receiver.requests)
    assert 0.3 <= second - first < 1.5
    assert 0.6 <= third - second < 2.5
    assert 1 == len({r.headers["X-Heygem-Delivery"] for r in receiver.requests})
    assert "job.failed" == json.loads(receiver.requests[0].body)["event"]
    assert [1, 2] == [e["tries"] for e in logs if e["event"] == "notify_retry"]
    assert [] == notices.rows


def test_a_receiver_that_never_accepts_is_given_up_logged_and_shown_without_the_secret(published, dispatcher,
                                                                                        notices):
    """After `attempts` tries the delivery fails: notify_failed in the log and a notice for the page,
    naming the receiver by scheme and host only (its path holds a token); the secret is nowhere."""
    with WebhookReceiver(answers=[500, 500]) as receiver, capture_logs() as logs:
        event = read_event(published, team="", host="box", status="failed")
        Announcer(_settings(receiver.url, attempts=2, backoff_s=0.1), dispatcher).job_published(event, [], notices)
        wait_for(lambda: notices.rows, 10)
    [(kind, text)] = notices.rows
    assert "notify" == kind
    assert f"webhook for job 'Quarterly update' to http://127.0.0.1:{receiver.server.server_port} failed after " \
           "2 tries: the webhook at" in text
    assert "HTTP 500" in text
    [failed] = [e for e in logs if e["event"] == "notify_failed"]
    assert 2 == failed["tries"]
    everything = json.dumps(logs, default=str) + text
    assert SECRET not in everything and "not-for-logs" not in everything


def test_submitting_never_waits_for_a_slow_receiver(published, dispatcher, notices):
    """A receiver that takes 2 s to answer: queueing five announcements takes milliseconds."""
    with WebhookReceiver(delay_s=2.0) as receiver:
        event = read_event(published, team="", host="box", status="done")
        announcer = Announcer(_settings(receiver.url), dispatcher)
        started = time.perf_counter()
        for _ in range(5):
            announcer.job_published(event, [], notices)
        elapsed = time.perf_counter() - started
        wait_for(lambda: receiver.requests, 10)
    assert elapsed < 0.2


def test_a_webhook_without_a_secret_is_sent_unsigned(published, dispatcher, notices):
    """No secret configured: the POST carries no signature header (docs say to set one)."""
    with WebhookReceiver() as receiver:
        event = read_event(published, team="", host="box", status="done")
        settings = NotifySettings.model_validate({"webhook": {"url": receiver.url}})
        Announcer(settings, dispatcher).job_published(event, [], notices)
        wait_for(lambda: receiver.requests, 10)
    assert "X-Heygem-Signature" not in receiver.requests[0].headers


def test_a_job_name_that_is_not_utf8_is_still_posted(published, dispatcher, notices):
    """A name with a surrogate escape (undecodable bytes) is sent as a JSON \\u escape, not a crash."""
    from dataclasses import replace

    with WebhookReceiver() as receiver:
        event = replace(read_event(published, team="", host="box", status="done"), job="caf\udce9")
        Announcer(_settings(receiver.url), dispatcher).job_published(event, [], notices)
        wait_for(lambda: receiver.requests, 10)
    assert b'"job": "caf\\udce9"' in receiver.requests[0].body
    assert [] == notices.rows
