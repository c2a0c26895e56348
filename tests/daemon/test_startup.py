"""Start-up: the default engine is created before READY, so the first job pays no more than the next."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .conftest import drop_job

pytestmark = pytest.mark.slow


@pytest.fixture
def short_job(tmp_path: Path, media_dir: Path) -> dict[str, Path]:
    """1.5 s of real speech and of a real talking head at 256x256 (keeps the test fast)."""
    audio, video = tmp_path / "voice.wav", tmp_path / "talk.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(media_dir / "audio_1.wav"), "-t", "1.5", str(audio)],
                   check=True, timeout=60)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(media_dir / "face_5.mp4"), "-t", "1.5", "-an",
                    "-vf", "scale=256:256", "-c:v", "libx264", "-preset", "ultrafast", str(video)],
                   check=True, timeout=60)
    return {"voice.wav": audio, "talk.mp4": video}


def _job_events(folder: Path) -> list[str]:
    lines = (folder / "log.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["event"] for line in lines]


def test_the_default_engine_is_created_once_before_ready_and_no_job_pays_for_it(daemon_factory, short_job):
    """engine_created (with its load time) is logged once, before daemon_started (READY comes with it),
    and neither of two identical jobs logs a model being created or loaded: the first pays nothing extra."""
    daemon = daemon_factory({"default_engine": "builtin"}).start()
    drop_job(daemon.inbox, "first", short_job, ready=True)
    first = daemon.wait_published("first", timeout=180)
    drop_job(daemon.inbox, "second", short_job, ready=True)
    second = daemon.wait_published("second", timeout=180)
    rows = daemon.events()
    events = [row.get("event") for row in rows]
    [created] = [row for row in rows if row.get("event") == "engine_created"]
    assert ("builtin", "cpu") == (created["engine"], created["device"]) and created["load_s"] >= 0
    assert events.index("engine_created") < events.index("daemon_started") < events.index("job_started")
    for job in (first, second):
        loads = [e for e in _job_events(job) if e in ("engine_created", "engine_ready") or e.endswith("_loaded")]
        assert [] == loads, job.name
