"""A folder per team, through the real daemon: two inboxes side by side, each job published only in
its own team's outbox with that outbox's group and mode, each page showing only its own jobs, and
each team's notifications (signed webhook, STARTTLS mail) received by real local servers."""

from __future__ import annotations

import grp
import json
import os
import stat
import time
from pathlib import Path

import pytest

from heygem_daemon.notify import webhook
from tests.support.daemon_wait import wait_for
from tests.support.live_daemon import LiveDaemon, small_job, status
from tests.support.notify_servers import SmtpServer, WebhookReceiver

HOOK_SECRET = "team-hook-secret-123"
SMTP_PASSWORD = "team-smtp-password-456"


def _group(*names: str) -> grp.struct_group:
    for name in names:
        try:
            return grp.getgrnam(name)
        except KeyError:
            continue
    pytest.skip(f"none of the groups {names} exists here")


def _config(tmp_path: Path, receiver: WebhookReceiver, smtp: SmtpServer, hr_group: str, sales_group: str) -> Path:
    path = tmp_path / "teams.toml"
    path.write_text(f"""
settle_seconds = 1.0
poll_interval = 0.3
default_engine = "paint"
cache_dir = "{tmp_path / 'cache'}"
state_dir = "{tmp_path / 'state'}"

[engines]
paint = "tests.support.paint_engine:PaintEngine"

[notify.webhook]
url = "{receiver.url}"
backoff_s = 0.2

[notify.email]
smtp_host = "127.0.0.1"
smtp_port = {smtp.port}
smtp_user = "{smtp.user}"
ca_file = "{smtp.cert}"
from_address = "heygem@example.com"
allowed_domains = ["example.com"]

[[teams]]
name = "hr"
inbox = "{tmp_path / 'hr' / 'inbox'}"
outbox = "{tmp_path / 'hr' / 'outbox'}"
notify = ["hr-lead@example.com"]
group = "{hr_group}"
mode = "0640"
[teams.output]
crf = 30

[[teams]]
name = "sales"
inbox = "{tmp_path / 'sales' / 'inbox'}"
outbox = "{tmp_path / 'sales' / 'outbox'}"
notify = []
group = "{sales_group}"
mode = "0600"
""", encoding="utf-8")
    return path


def _modes(folder: Path) -> dict[str, tuple[int, int]]:
    """Relative path -> (permission bits with setgid, gid), for every file and folder in ``folder``."""
    found = {".": (stat.S_IMODE(folder.stat().st_mode), folder.stat().st_gid)}
    for path in folder.rglob("*"):
        st = path.lstat()
        found[str(path.relative_to(folder))] = (stat.S_IMODE(st.st_mode), st.st_gid)
    return found


@pytest.mark.slow
def test_two_team_folders_run_side_by_side_without_seeing_each_others_jobs(tmp_path, media_dir):
    if os.geteuid() != 0:
        pytest.skip("giving published files another group needs root (or a daemon user in that group)")
    hr_group, sales_group = _group("users"), _group("nogroup", "nobody")
    for team in ("hr", "sales"):
        (tmp_path / team / "inbox").mkdir(parents=True)
    with WebhookReceiver() as receiver, SmtpServer(tmp_path, password=SMTP_PASSWORD) as smtp, LiveDaemon(
            _config(tmp_path, receiver, smtp, hr_group.gr_name, sales_group.gr_name), tmp_path / "daemon.log",
            tmp_path / "sales" / "outbox" / "status.json",
            {"HEYGEM_NOTIFY__WEBHOOK__SECRET": HOOK_SECRET,
             "HEYGEM_NOTIFY__EMAIL__SMTP_PASSWORD": SMTP_PASSWORD}) as daemon:
        small_job(tmp_path / "hr" / "inbox", "welcome", media_dir,
                  toml='notify = ["alice@example.com", "eve@elsewhere.org"]\n')
        small_job(tmp_path / "sales" / "inbox", "pitch", media_dir, audio=False)
        hr_done = tmp_path / "hr" / "outbox" / "welcome" / "report.json"
        sales_done = tmp_path / "sales" / "outbox" / "pitch" / "report.json"
        wait_for(lambda: hr_done.exists() and sales_done.exists(), 180, daemon.log)
        wait_for(lambda: len(receiver.requests) >= 2 and smtp.messages, 30, daemon.log)
        hr_page, sales_page = status(tmp_path / "hr" / "outbox"), status(tmp_path / "sales" / "outbox")
        events = daemon.events()

    # each outbox holds its own job only, and each page lists only its own
    assert ["welcome"] == sorted(p.name for p in (tmp_path / "hr" / "outbox").iterdir() if p.is_dir()
                                 and not p.name.startswith("."))
    assert ["pitch"] == sorted(p.name for p in (tmp_path / "sales" / "outbox").iterdir() if p.is_dir()
                               and not p.name.startswith("."))
    assert [("welcome", "done")] == [(r["job"], r["state"]) for r in hr_page["recent"]]
    assert [("pitch", "failed")] == [(r["job"], r["state"]) for r in sales_page["recent"]]

    # published files take their outbox's group and mode; folders the x bits and setgid
    hr = _modes(tmp_path / "hr" / "outbox" / "welcome")
    assert {(0o2750, hr_group.gr_gid)} == {v for k, v in hr.items() if (tmp_path / "hr/outbox/welcome" / k).is_dir()}
    assert {(0o640, hr_group.gr_gid)} == {v for k, v in hr.items() if (tmp_path / "hr/outbox/welcome" / k).is_file()}
    sales = _modes(tmp_path / "sales" / "outbox" / "pitch")
    assert {(0o2700, sales_group.gr_gid)} == {v for k, v in sales.items()
                                              if (tmp_path / "sales/outbox/pitch" / k).is_dir()}
    assert {(0o600, sales_group.gr_gid)} == {v for k, v in sales.items()
                                             if (tmp_path / "sales/outbox/pitch" / k).is_file()}

    # the webhook heard both, signed, each naming its team
    bodies = {}
    for request in receiver.requests:
        assert webhook.verify(HOOK_SECRET.encode(), request.headers["X-Heygem-Signature"], request.body,
                              now=time.time())
        body = json.loads(request.body)
        bodies[body["team"]] = (body["job"], body["event"], body["status"])
    assert {"hr": ("welcome", "job.finished", "done"), "sales": ("pitch", "job.failed", "failed")} == bodies

    # mail only for hr (sales has no recipients): its lead and the job's allowed address, over STARTTLS
    [(recipients, message)] = smtp.messages
    assert (["hr-lead@example.com", "alice@example.com"], [True]) == (recipients, smtp.tls_used)
    assert "Your video is ready: welcome" == message["Subject"]
    # the refused address is said on hr's page and in the job's own log, and is no failure
    assert any("eve@elsewhere.org" in n["text"] for n in hr_page["notices"])
    job_log = (tmp_path / "hr" / "outbox" / "welcome" / "log.jsonl").read_text(encoding="utf-8")
    assert "notify_domain_refused" in job_log and "eve@elsewhere.org" in job_log
    assert not any("eve@elsewhere.org" in n["text"] for n in sales_page.get("notices", []))

    # secrets come from the environment and are never logged
    text = (tmp_path / "daemon.log").read_text(encoding="utf-8")
    assert HOOK_SECRET not in text and SMTP_PASSWORD not in text
    assert {"hr", "sales"} == {e.get("team") for e in events if e.get("event") == "daemon_started"}
