"""doctor, validate and status with [[teams]], notifications and retention configured."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.support.notify_servers import SmtpServer

from .test_cli import cli


def _config(tmp_path: Path, smtp_port: int) -> Path:
    config = tmp_path / "daemon.toml"
    config.write_text(f"""
cache_dir = "{tmp_path / 'cache'}"
[notify.webhook]
url = "https://hooks.example.com/secret-path"
[notify.email]
smtp_host = "127.0.0.1"
smtp_port = {smtp_port}
allowed_domains = ["example.com"]
[retention]
days = 30
[[teams]]
name = "hr"
inbox = "{tmp_path / 'hr' / 'inbox'}"
outbox = "{tmp_path / 'hr' / 'outbox'}"
default_engine = "wav2lip"
group = "users"
mode = "0640"
[[teams]]
name = "sales"
inbox = "{tmp_path / 'sales' / 'inbox'}"
outbox = "{tmp_path / 'sales' / 'outbox'}"
""", encoding="utf-8")
    for team in ("hr", "sales"):
        for folder in ("inbox", "outbox"):
            (tmp_path / team / folder).mkdir(parents=True)
    return config


def test_doctor_checks_each_teams_folders_and_group_and_what_notifies(tmp_path):
    """One line per team folder and publish setting; the webhook without its path (a token may hide
    there) and flagged unsigned; the SMTP server asked for STARTTLS; the retention in force."""
    with SmtpServer(tmp_path) as smtp:
        result = cli("doctor", "--config", str(_config(tmp_path, smtp.port)))
    out = result.stdout
    assert 0 == result.returncode, out + result.stderr
    for line in ("[ok] inbox (hr): ", "[ok] outbox (sales): ", "[ok] publish (hr): group users, files 0640, "
                 "folders 2750", "[ok] publish (sales): files keep the daemon's group",
                 "[ok] notify webhook: https://hooks.example.com, UNSIGNED: set a secret",
                 f"[ok] notify email: 127.0.0.1:{smtp.port} offers STARTTLS; allowed domains: example.com",
                 "[ok] retention: outbox jobs kept 30 days, then 7 in .trash; cache 0.00 GB, cap 21.5 GB"):
        assert line in out, out
    assert "secret-path" not in out


def test_validate_uses_the_defaults_of_the_team_whose_inbox_holds_the_folder(tmp_path, media_dir):
    """A job in hr's inbox gets hr's default engine (wav2lip, not installed here: a problem), and an
    address outside the allowed domains is a warning."""
    config = _config(tmp_path, 25)
    job = tmp_path / "hr" / "inbox" / "welcome"
    job.mkdir()
    shutil.copyfile(media_dir / "face_5.mp4", job / "talk.mp4")
    shutil.copyfile(media_dir / "audio_1.wav", job / "voice.wav")
    (job / "job.toml").write_text('notify = ["alice@example.com", "eve@elsewhere.org"]\n', encoding="utf-8")
    result = cli("validate", "--config", str(config), str(job))
    assert 1 == result.returncode, result.stdout + result.stderr
    assert "engine wav2lip" in result.stdout
    assert "notify alice@example.com" in result.stdout
    assert "WARNING notify: no mail will go to eve@elsewhere.org: only example.com domains may be mailed" \
        in result.stdout


def test_status_prints_each_teams_page_with_its_notices(tmp_path):
    """status shows each team's jobs under its name, and the notices of its page."""
    config = _config(tmp_path, 25)
    for team, job in (("hr", "welcome"), ("sales", "pitch")):
        (tmp_path / team / "outbox" / "status.json").write_text(json.dumps({
            "updated_at": "now", "host": "h", "problem": None, "waiting": [], "queued": [], "running": [],
            "recent": [{"job": job, "state": "done"}],
            "notices": [{"at": "t", "kind": "retention", "text": f"moved 1 job of {team}"}]}), encoding="utf-8")
    result = cli("status", "--config", str(config))
    assert 0 == result.returncode, result.stderr
    hr, sales = result.stdout.split("== team sales")
    assert "welcome" in hr and "moved 1 job of hr" in hr and "pitch" not in hr
    assert "pitch" in sales and "moved 1 job of sales" in sales
