"""Per-video isolation: a bad video fails alone; its siblings are published and the job is 'partial'."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .conftest import drop_job, media_duration, read_report

pytestmark = pytest.mark.slow


def _faceless(dst: Path) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", "testsrc=s=160x160:r=25:d=1.5",
                    "-c:v", "libx264", "-preset", "ultrafast", str(dst)], check=True, timeout=60)
    return dst


def test_corrupt_and_faceless_videos_fail_alone_and_the_good_ones_are_published(daemon_factory, tiny_media, tmp_path):
    """2 good + 1 corrupt + 1 faceless video: status partial, 2 outputs, ERROR.txt names both bad ones."""
    d = daemon_factory({"settle_seconds": 0.3, "poll_interval": 0.2}).start()
    face = tiny_media["face"].read_bytes()
    drop_job(d.inbox, "mixed", {
        "a.mp4": tiny_media["face"],
        "b-corrupt.mp4": face[:4096] + bytes(range(256)) * 64,
        "c.mp4": tiny_media["face"],
        "d-no-face.mp4": _faceless(tmp_path / "noface.mp4"),
        "voice.wav": tiny_media["voice"],
    })
    out = d.wait_published("mixed", timeout=90)
    report = read_report(out)
    assert report["status"] == "partial"
    by_video = {o["video"]: o for o in report["outputs"]}
    assert {v: o["status"] for v, o in by_video.items()} == {
        "a.mp4": "done", "b-corrupt.mp4": "failed", "c.mp4": "done", "d-no-face.mp4": "failed"}
    for good in ("a.mp4", "c.mp4"):
        path = out / by_video[good]["file"]
        assert abs(media_duration(path) - report["audio"][0]["duration_s"]) <= 0.1
    assert sorted(p.name for p in out.glob("*.mp4")) == ["a_voice.mp4", "c_voice.mp4"]
    error = (out / "ERROR.txt").read_text(encoding="utf-8")
    assert "b-corrupt.mp4" in error and "d-no-face.mp4" in error and "2 of 4 videos were made" in error
    assert d.proc.poll() is None
