"""Retention under the live daemon (a subprocess): while it takes and publishes a new job, the old
job goes to the trash, an expired trash entry and least recently used cache files go away, and
nothing else is touched; every action is in the log and on the page."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.retention.outbox_fixtures import DAY, aged, published_job
from tests.support.daemon_wait import wait_for
from tests.support.live_daemon import LiveDaemon, small_job, status


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "daemon.toml"
    path.write_text(f"""
inbox = "{tmp_path / 'inbox'}"
outbox = "{tmp_path / 'outbox'}"
cache_dir = "{tmp_path / 'cache'}"
settle_seconds = 1.0
poll_interval = 0.3
default_engine = "paint"

[engines]
paint = "tests.support.paint_engine:PaintEngine"

[retention]
days = 30
trash_days = 7
busy_seconds = 600
interval_s = 0.5
cache_max_bytes = 3000
""", encoding="utf-8")
    return path


def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.slow
def test_retention_removes_only_what_it_should_under_a_live_daemon(tmp_path, media_dir):
    now = time.time()
    outbox, cache = tmp_path / "outbox", tmp_path / "cache"
    (tmp_path / "inbox").mkdir()
    published_job(outbox, "old", 31, now=now)
    published_job(outbox, "young", 29, now=now)
    watched = published_job(outbox, "old but watched", 90, now=now)
    os.utime(watched / "face_voice.mp4", (now - 60, now - 90 * DAY))  # someone is playing it
    (outbox / "their own folder").mkdir()  # no report.json: not a job the daemon published
    (outbox / "their own folder" / "notes.txt").write_text("keep", encoding="utf-8")
    aged(outbox / "their own folder", 400 * DAY, now=now)
    published_job(outbox / ".staging", "half-written", 400, now=now)
    expired = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now - 8 * DAY))
    recent = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now - 2 * DAY))
    published_job(outbox / ".trash" / expired, "binned long ago", 60, now=now)
    published_job(outbox / ".trash" / recent, "binned lately", 40, now=now)
    for name, used_days in (("faces/a.npz", 30), ("faces/b.npz", 20), ("phonemes/c.npz", 1)):
        (cache / name).parent.mkdir(parents=True, exist_ok=True)
        (cache / name).write_bytes(b"\0" * 1400)
        os.utime(cache / name, (now - used_days * DAY,) * 2)
    before = _tree(outbox)

    with LiveDaemon(_config(tmp_path), tmp_path / "daemon.log", outbox / "status.json", {}) as daemon:
        small_job(tmp_path / "inbox", "fresh", media_dir)
        wait_for(lambda: (outbox / "fresh" / "report.json").exists(), 120, daemon.log)
        wait_for(lambda: len(status(outbox).get("notices", [])) >= 3, 30, daemon.log)
        time.sleep(1.5)  # three more sweeps: nothing else may go
        page, events = status(outbox), daemon.events()

    trashed = f".trash/{time.strftime('%Y%m%d', time.gmtime(now))}"
    after = _tree(outbox)
    moved = {p for p in after if p.startswith(".trash/") and p.split("/")[1] != recent}
    assert {"old"} == {p.split("/")[2] for p in moved if p.count("/") >= 2}
    assert not any(p == "old" or p.startswith("old/") for p in after)
    gone = before - after - {p for p in before if p == "old" or p.startswith("old/")}
    assert {p for p in before if "binned long ago" in p or p == f".trash/{expired}"} == gone
    for kept in ("young/report.json", "old but watched/face_voice.mp4", "their own folder/notes.txt",
                 ".staging/half-written/report.json", f".trash/{recent}/binned lately/report.json",
                 "fresh/face_voice.mp4"):
        assert kept in after, kept
    assert min(moved).startswith(trashed[:15])  # a trash folder named for today (UTC)

    # the cache: the job's own fresh entries push it over its cap; the least recently used go first
    left = {str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file()}
    assert "faces/a.npz" not in left and "faces/b.npz" not in left
    assert any(p.startswith("faces/") and p not in ("faces/a.npz", "faces/b.npz") for p in left), left

    texts = [n["text"] for n in page["notices"]]
    assert any(t == "moved 1 job older than 30 days to .trash: old" for t in texts), texts
    assert any(t == "deleted 1 job from .trash after 7 days: binned long ago" for t in texts), texts
    assert any(t.startswith("cache over its cap of 0.0 MB: removed") for t in texts), texts
    names = [e["event"] for e in events]
    assert {"retention_trashed", "retention_deleted", "cache_evicted", "retention_skipped_busy"} <= set(names)
    assert 1 == names.count("retention_trashed")
