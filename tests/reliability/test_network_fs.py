"""Network shares: scanning without inotify, and an inbox mount that goes away and comes back."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from heygem_daemon.intake import watcher as watcher_module
from heygem_daemon.intake.watcher import InboxWatcher

from .conftest import drop_job, read_report, tiny_job, wait_for


def _inotify_fds(pid: int) -> int:
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:inotify"
        except OSError:
            continue
    return count


def _status(outbox: Path) -> dict:
    return json.loads((outbox / "status.json").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_polling_mode_uses_no_inotify_and_still_takes_jobs(daemon_factory, tiny_media, tmp_path):
    """polling = "always": the daemon holds no inotify instance (as on NFS/SMB) and processes a dropped job."""
    auto = daemon_factory({"polling": "auto"}, name="auto").start()
    assert _inotify_fds(auto.proc.pid) >= 1  # the check can see inotify when it is used
    auto.stop()
    d = daemon_factory({"polling": "always", "settle_seconds": 0.3, "poll_interval": 0.3}, name="poll").start()
    drop_job(d.inbox, "polled", tiny_job(tiny_media))
    out = d.wait_published("polled", timeout=60)
    assert read_report(out)["status"] == "done"
    assert _inotify_fds(d.proc.pid) == 0


@pytest.mark.slow
def test_vanished_inbox_is_reported_and_its_jobs_are_taken_when_it_returns(daemon_factory, tiny_media, tmp_path):
    """Inbox folder gone (unmounted share): status.json names the problem, the daemon lives; back → job runs."""
    d = daemon_factory({"polling": "always", "settle_seconds": 0.5, "poll_interval": 0.2}).start()
    drop_job(d.inbox, "held", {**tiny_job(tiny_media), "job.toml": 'videos = ["talk.mp4", "late.mp4"]\n'})
    wait_for(lambda: any(w["job"] == "held" for w in _status(d.outbox)["waiting"]), 30, d.log)
    away = d.inbox.with_name("inbox-unmounted")
    os.rename(d.inbox, away)
    wait_for(lambda: _status(d.outbox)["problem"] is not None, 30, d.log)
    assert "not readable" in _status(d.outbox)["problem"]
    assert d.proc.poll() is None
    (away / "held" / "late.mp4").write_bytes(tiny_media["face"].read_bytes())
    os.rename(away, d.inbox)
    out = d.wait_published("held", timeout=60)
    assert read_report(out)["status"] == "done" and len(read_report(out)["outputs"]) == 2
    wait_for(lambda: _status(d.outbox)["problem"] is None, 10, d.log)
    assert any(e.get("event") == "inbox_available_again" for e in d.events())


@pytest.mark.slow
def test_inbox_remounted_empty_without_daemon_folders_still_takes_new_jobs(daemon_factory, tiny_media, tmp_path):
    """The share comes back as a fresh folder (no .heygem inside): the claim area is recreated, jobs still run."""
    d = daemon_factory({"polling": "always", "settle_seconds": 0.3, "poll_interval": 0.2}).start()
    away = d.inbox.with_name("inbox-old")
    os.rename(d.inbox, away)
    wait_for(lambda: _status(d.outbox)["problem"] is not None, 30, d.log)
    d.inbox.mkdir()
    drop_job(d.inbox, "after-remount", tiny_job(tiny_media))
    out = d.wait_published("after-remount", timeout=60)
    assert read_report(out)["status"] == "done"


@pytest.mark.parametrize("error", [
    PermissionError(errno.EACCES, "Permission denied"),
    OSError(errno.ESTALE, "Stale file handle"),
    OSError(errno.EIO, "Input/output error"),
])
def test_unreadable_inbox_is_reported_and_jobs_are_not_forgotten(tmp_path, tiny_media, monkeypatch, error):
    """EACCES / ESTALE / EIO on the inbox: reported, no job ready, settle state kept; back → ready at once."""
    # As root (CI) chmod cannot deny access and a stale NFS handle cannot be made
    # without an NFS server, so the inbox listing itself is made to fail.
    job = tmp_path / "waiting-job"
    job.mkdir()
    for name, src in tiny_job(tiny_media).items():
        (job / name).write_bytes(src.read_bytes())
    w = InboxWatcher(tmp_path, settle_seconds=10, incomplete_timeout_s=900, use_inotify=False,
                     max_toml_bytes=4096)
    assert w.scan(1000.0).waiting == {"waiting-job": "settling (0/10 s unchanged)"}
    real_scandir = os.scandir

    def failing(path=".", *args):
        if Path(path) == tmp_path:
            raise error
        return real_scandir(path, *args)

    monkeypatch.setattr(watcher_module.os, "scandir", failing)
    down = w.scan(1005.0)
    assert down.ready == [] and down.problem is not None
    assert error.strerror in down.problem
    assert w.scan(1020.0).problem == down.problem
    monkeypatch.setattr(watcher_module.os, "scandir", real_scandir)
    back = w.scan(1021.0)
    assert back.problem is None
    # quiet since 1000 while out of sight: not restarted from zero, not treated as a new job
    assert [(j.name, j.first_seen) for j in back.ready] == [("waiting-job", 1000.0)]
