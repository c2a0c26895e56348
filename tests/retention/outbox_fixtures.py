"""Outbox folders of a known age, made with real files and os.utime."""

from __future__ import annotations

import os
import time
from pathlib import Path

DAY = 86400.0


def aged(path: Path, seconds_ago: float, *, now: float | None = None) -> None:
    """Set atime and mtime of ``path`` and of everything in it to ``seconds_ago``."""
    stamp = (now or time.time()) - seconds_ago
    for folder, _dirs, files in os.walk(path):
        for name in files:
            os.utime(os.path.join(folder, name), (stamp, stamp))
        os.utime(folder, (stamp, stamp))


def published_job(outbox: Path, name: str, days_old: float, *, now: float | None = None) -> Path:
    """A job folder as the daemon publishes it (report.json, a video, source/), ``days_old`` days ago."""
    folder = outbox / name
    (folder / "source").mkdir(parents=True)
    (folder / "report.json").write_text('{"job": "%s", "status": "done"}' % name, encoding="utf-8")
    (folder / "face_voice.mp4").write_bytes(b"\0" * 1024)
    (folder / "source" / "voice.wav").write_bytes(b"\0" * 512)
    aged(folder, days_old * DAY, now=now)
    return folder
