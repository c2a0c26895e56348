"""E-mail: received by a real SMTP server (aiosmtpd on 127.0.0.1) only after STARTTLS with a checked
certificate and the configured login; refused in clear; failures logged and shown, password never."""

from __future__ import annotations

import json
from pathlib import Path

from structlog.testing import capture_logs

from heygem_daemon.notify.announce import Announcer
from heygem_daemon.notify.event import read_event
from heygem_daemon.settings import NotifySettings
from tests.support.daemon_wait import wait_for
from tests.support.notify_servers import SmtpServer


def _settings(server: SmtpServer, *, ca_file: Path | None, **email: object) -> NotifySettings:
    return NotifySettings.model_validate({
        "recipients": ["hr-lead@example.com"],
        "email": {"smtp_host": "127.0.0.1", "smtp_port": server.port, "smtp_user": server.user,
                  "smtp_password": server.password, "ca_file": ca_file, "from_address": "heygem@example.com",
                  "allowed_domains": ["example.com"], "attempts": 1, **email},
    })


def test_the_job_and_team_recipients_get_one_mail_over_starttls_after_login(tmp_path, published, dispatcher,
                                                                             notices):
    """The team's recipients and the job's allowed addresses get one plain-text mail, sent after
    STARTTLS (certificate checked against ca_file) and the configured login."""
    with SmtpServer(tmp_path) as server:
        event = read_event(published, team="hr", host="box", status="partial")
        Announcer(_settings(server, ca_file=server.cert), dispatcher).job_published(
            event, ["alice@example.com"], notices)
        wait_for(lambda: server.messages, 15)
    [(recipients, message)] = server.messages
    assert ["hr-lead@example.com", "alice@example.com"] == recipients
    assert ([True], ["heygem"]) == (server.tls_used, server.logins)
    assert "Your job Quarterly update finished, but not every video could be made" == message["Subject"]
    text = message.get_payload(decode=True).decode()
    assert "alice_voice.mp4" in text and "no face was found in any frame" in text
    assert "Quarterly update" in text and "team hr" in text
    assert [] == notices.rows


def test_a_server_certificate_that_is_not_trusted_stops_the_mail(tmp_path, published, dispatcher, notices):
    """Without ca_file the self-signed certificate is not trusted: no mail, the failure on the page."""
    with SmtpServer(tmp_path) as server, capture_logs() as logs:
        event = read_event(published, team="", host="box", status="done")
        Announcer(_settings(server, ca_file=None), dispatcher).job_published(event, [], notices)
        wait_for(lambda: notices.rows, 15)
    assert [] == server.messages
    [(kind, text)] = notices.rows
    assert "notify" == kind and "CERTIFICATE_VERIFY_FAILED" in text
    assert server.password not in json.dumps(logs, default=str) + text


def test_a_server_without_starttls_is_never_sent_mail_in_clear(tmp_path, published, dispatcher, notices):
    """A server that does not offer STARTTLS gets no login and no mail; the page says why."""
    with SmtpServer(tmp_path, offer_starttls=False) as server:
        event = read_event(published, team="", host="box", status="done")
        Announcer(_settings(server, ca_file=server.cert), dispatcher).job_published(event, [], notices)
        wait_for(lambda: notices.rows, 15)
    assert ([], []) == (server.messages, server.logins)
    assert "does not offer STARTTLS; mail is never sent in clear" in notices.rows[0][1]


def test_a_wrong_password_is_reported_without_the_password(tmp_path, published, dispatcher, notices):
    """The server refuses the login: the notice gives the server's answer, never the password tried."""
    with SmtpServer(tmp_path) as server, capture_logs() as logs:
        event = read_event(published, team="", host="box", status="done")
        settings = _settings(server, ca_file=server.cert, smtp_password="wrong-password-xyz")
        Announcer(settings, dispatcher).job_published(event, [], notices)
        wait_for(lambda: notices.rows, 15)
    assert [] == server.messages
    text = notices.rows[0][1]
    assert "535" in text
    assert "wrong-password-xyz" not in json.dumps(logs, default=str) + text


def test_no_recipients_means_no_mail_and_no_smtp_server_means_a_notice(published, dispatcher, notices):
    """Nobody to tell: nothing is queued.  Recipients but no smtp_host: a notice instead of silence."""
    event = read_event(published, team="", host="box", status="done")
    assert [] == Announcer(NotifySettings(), dispatcher).job_published(event, [], notices)
    assert [] == notices.rows
    Announcer(NotifySettings(), dispatcher).job_published(event, ["alice@example.com"], notices)
    assert [("notify", "mail for job 'Quarterly update' was not sent: no SMTP server is configured "
                       "(notify.email.smtp_host)")] == notices.rows


def test_a_job_name_with_a_line_break_or_undecodable_bytes_cannot_inject_headers(published):
    """A folder name holding a newline and a surrogate escape becomes one printable subject line."""
    from dataclasses import replace

    from heygem_daemon.notify.mail import compose

    event = replace(read_event(published, team="", host="box", status="done"),
                    job="evil\nBcc: victim@example.org \udcff")
    message = compose(event, ["alice@example.com"], "heygem@example.com")
    assert "Your video is ready: evil Bcc: victim@example.org \\udcff" == message["Subject"]
    assert message["Bcc"] is None
