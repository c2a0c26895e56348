"""The notification spool: a job's deliveries are on disk before the job is published, leave it
only once delivered or given up, keep one id across tries and restarts, and are sent by whichever
daemon starts next.  Real files, a real webhook receiver and SMTP server on 127.0.0.1."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from heygem_daemon.notify.announce import Announcer, send_spooled
from heygem_daemon.notify.dispatcher import Dispatcher
from heygem_daemon.notify.spool import Spool, delivery_id
from heygem_daemon.settings import NotifySettings
from tests.support.daemon_wait import wait_for
from tests.support.notify_servers import SmtpServer, WebhookReceiver

JOB = "Quarterly update"


@pytest.fixture
def staged(tmp_path: Path) -> Path:
    """A job staged for publishing as the runner leaves it: report.json and ERROR.txt in staging."""
    folder = tmp_path / "outbox" / ".staging" / f"{JOB}.box.42.1764870000000"
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps({"job": JOB, "finished_at": "2026-12-04T19:00:00+00:00",
                                                    "outputs": [{"file": "alice_voice.mp4"}]}), encoding="utf-8")
    (folder / "ERROR.txt").write_text("Job 'Quarterly update' finished only in part.\n", encoding="utf-8")
    return folder


def _publish(staged: Path, name: str = JOB) -> Path:
    """The runner's rename: staging becomes outbox/<name>."""
    published = staged.parent.parent / name
    staged.rename(published)
    return published


def _webhook(url: str, **keys: object) -> NotifySettings:
    return NotifySettings.model_validate({"webhook": {"url": url, "backoff_s": 0.1, **keys}})


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    made = Spool(tmp_path / "state" / "notify")
    made.open()
    return made


def _dispatcher() -> Dispatcher:
    made = Dispatcher(capacity=10)
    made.start()
    return made


def test_the_delivery_is_on_disk_before_the_rename_and_held_until_the_job_is_published(staged, spool, notices):
    """spool_job writes one file per channel, named by the delivery id; send_spooled leaves it
    alone while the staging folder exists, sends it once the job is published, then removes it."""
    dispatcher = _dispatcher()
    with WebhookReceiver() as receiver:
        announcer = Announcer(_webhook(receiver.url), dispatcher, spool, report_failure=notices)
        [record] = announcer.spool_job(staged, JOB, host="box", status="partial", job_recipients=[])
        assert [f"{record.id}.json"] == [p.name for p in spool.folder.iterdir()]
        assert delivery_id(staged.name, "webhook") == record.id
        send_spooled(spool, dispatcher, {"": announcer})
        dispatcher.close(timeout_s=5)
        assert ([], [f"{record.id}.json"]) == (receiver.requests, [p.name for p in spool.folder.iterdir()])

        _publish(staged)
        dispatcher = _dispatcher()
        announcer.dispatcher = dispatcher
        send_spooled(spool, dispatcher, {"": announcer})
        wait_for(lambda: not list(spool.folder.iterdir()), 10)
        dispatcher.close(timeout_s=5)
    [request] = receiver.requests
    body = json.loads(request.body)
    assert (record.id, record.id, JOB) == (request.headers["X-Heygem-Delivery"], body["delivery_id"],
                                           body["outbox_folder"])
    assert str(staged.parent.parent) == record.event["outbox"]  # the outbox, not the staging area
    assert [] == notices.rows


def test_a_name_taken_meanwhile_respools_the_same_delivery_under_the_new_name(staged, spool, notices):
    """The publish loop asks again with "<job>-2": the one file is replaced, same id, new folder."""
    announcer = Announcer(_webhook("http://127.0.0.1:9/hook"), Dispatcher(capacity=1), spool, report_failure=notices)
    [first] = announcer.spool_job(staged, JOB, host="box", status="done", job_recipients=[])
    [second] = announcer.spool_job(staged, f"{JOB}-2", host="box", status="done", job_recipients=[])
    [on_disk] = spool.records()
    assert (first.id, first.id, f"{JOB}-2") == (second.id, on_disk.id, on_disk.event["folder"])


def test_tries_survive_a_restart_and_the_delivery_is_given_up_after_the_last_one(staged, spool, notices):
    """attempts = 3: two failed tries, a stop (the delivery stays spooled, tries = 2 written down),
    a new dispatcher: one more try, then notify_failed, a notice for the page, and the file is gone."""
    with WebhookReceiver(answers=[500, 500, 500]) as receiver:
        settings = _webhook(receiver.url, attempts=3, backoff_s=0.2)
        dispatcher = _dispatcher()
        announcer = Announcer(settings, dispatcher, spool, report_failure=notices)
        [record] = announcer.spool_job(staged, JOB, host="box", status="failed", job_recipients=[])
        _publish(staged)
        send_spooled(spool, dispatcher, {"": announcer})
        wait_for(lambda: spool.records() and spool.records()[0].tries == 2, 10)
        with capture_logs() as logs:
            dispatcher.close(timeout_s=5)
        assert ["notify_kept_for_restart"] == [e["event"] for e in logs]
        assert 2 == spool.records()[0].tries

        dispatcher = _dispatcher()
        announcer.dispatcher = dispatcher
        with capture_logs() as logs:
            send_spooled(spool, dispatcher, {"": announcer})
            wait_for(lambda: notices.rows, 10)
        dispatcher.close(timeout_s=5)
    assert 3 == len(receiver.requests)
    assert {record.id} == {r.headers["X-Heygem-Delivery"] for r in receiver.requests}
    assert [3] == [e["tries"] for e in logs if e["event"] == "notify_failed"]
    [(kind, text)] = notices.rows
    assert ("notify", True) == (kind, text.startswith(f"webhook for job '{JOB}' to http://127.0.0.1:"))
    assert [] == list(spool.folder.glob("*.json"))


def test_a_delivery_already_queued_is_not_queued_twice_when_the_spool_is_read_again(staged, spool, notices):
    """send_spooled after every publish reads the whole spool: a delivery waiting for its retry is
    not sent a second time in parallel."""
    with WebhookReceiver(answers=[500]) as receiver:
        dispatcher = _dispatcher()
        announcer = Announcer(_webhook(receiver.url, backoff_s=0.5), dispatcher, spool, report_failure=notices)
        announcer.spool_job(staged, JOB, host="box", status="done", job_recipients=[])
        _publish(staged)
        for _ in range(3):
            send_spooled(spool, dispatcher, {"": announcer})
        wait_for(lambda: not list(spool.folder.glob("*.json")), 10)
        dispatcher.close(timeout_s=5)
    assert 2 == len(receiver.requests)


def test_mail_is_spooled_too_and_carries_the_delivery_id_as_header_and_message_id(tmp_path, staged, spool, notices):
    """The team's recipients and job.toml's allowed address get one mail, from the spool, with
    X-Heygem-Delivery and a Message-ID made of the same id (mail systems drop duplicates on it)."""
    with SmtpServer(tmp_path) as smtp:
        settings = NotifySettings.model_validate({
            "recipients": ["team@example.com"],
            "email": {"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_user": smtp.user,
                      "smtp_password": smtp.password, "ca_file": str(smtp.cert), "backoff_s": 0.1}})
        dispatcher = _dispatcher()
        announcer = Announcer(settings, dispatcher, spool, report_failure=notices)
        [record] = announcer.spool_job(staged, JOB, host="box", status="done", job_recipients=["alice@example.com"])
        _publish(staged)
        send_spooled(spool, dispatcher, {"": announcer})
        wait_for(lambda: smtp.messages and not list(spool.folder.glob("*.json")), 15)
        dispatcher.close(timeout_s=5)
    [(rcpts, message)] = smtp.messages
    assert ["team@example.com", "alice@example.com"] == rcpts
    assert (record.id, f"<{record.id}@heygem-daemon>") == (message["X-Heygem-Delivery"], message["Message-ID"])
    assert "email" == record.channel


def test_a_channel_removed_from_the_settings_before_the_restart_drops_its_deliveries(staged, spool, notices):
    """A spooled webhook whose url was taken out of daemon.toml has nowhere to go: logged, removed."""
    announcer = Announcer(_webhook("http://127.0.0.1:9/hook"), Dispatcher(capacity=1), spool, report_failure=notices)
    announcer.spool_job(staged, JOB, host="box", status="done", job_recipients=[])
    _publish(staged)
    dispatcher = _dispatcher()
    with capture_logs() as logs:
        send_spooled(spool, dispatcher, {"": Announcer(NotifySettings(), dispatcher, spool)})
    dispatcher.close(timeout_s=5)
    assert ["notify_unconfigured_dropped"] == [e["event"] for e in logs]
    assert [] == list(spool.folder.glob("*.json"))


def test_a_job_name_that_is_not_utf8_survives_the_spool(staged, spool, notices):
    """A folder name with an undecodable byte (a surrogate escape) is written and read back as it was."""
    name = os.fsdecode(b"Quartal \xff")
    announcer = Announcer(_webhook("http://127.0.0.1:9/hook"), Dispatcher(capacity=1), spool, report_failure=notices)
    announcer.spool_job(staged, name, host="box", status="done", job_recipients=[])
    [record] = spool.records()
    assert name == record.event["folder"]


def test_an_unreadable_spool_file_is_set_aside_and_the_rest_goes_on(spool):
    """Half a file (a disk that lied about fsync): moved to *.unreadable-<time>, logged, not fatal."""
    (spool.folder / "broken.json").write_text('{"id": ', encoding="utf-8")
    with capture_logs() as logs:
        assert [] == spool.records()
    assert ["notify_spool_unreadable"] == [e["event"] for e in logs]
    assert [True] == [p.name.startswith("broken.json.unreadable-") for p in spool.folder.iterdir()]
