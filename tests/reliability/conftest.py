"""Fixtures for the reliability suite: the daemon-test helpers plus tiny real media.

The real daemon runs as a subprocess (tests/daemon/conftest.py); media is cut
small once per session so hundreds of jobs fit the CI budget on a 2-core box.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from tests.daemon.conftest import (  # noqa: F401 -- fixtures re-exported for this folder
    SHARED_MEDIA,
    DaemonProc,
    daemon_factory,
    drop_job,
    folders,
    media_dir,
    probe_duration,
    wait_for,
)


@pytest.fixture(scope="session")
def tiny_media(tmp_path_factory) -> dict[str, Path]:
    """A real talking face (face_5) cut to 1.5 s at 256x256 and 1.5 s of real speech."""
    if not (SHARED_MEDIA / "face_5.mp4").is_file():
        pytest.skip(f"sample media not found at {SHARED_MEDIA} (a fresh clone has none)")
    out = tmp_path_factory.mktemp("tiny_media")
    face, voice = out / "face.mp4", out / "voice.wav"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y", "-ss", "0.5", "-t", "1.5", "-i", str(SHARED_MEDIA / "face_5.mp4"),
         "-vf", "scale=256:256", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "28",
         "-c:a", "aac", "-b:a", "64k", str(face)], check=True, timeout=60,
    )
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y", "-ss", "0.5", "-t", "1.5", "-i", str(SHARED_MEDIA / "audio_2.wav"),
         "-ac", "1", "-ar", "16000", str(voice)], check=True, timeout=60,
    )
    return {"face": face, "voice": voice}


def tiny_job(media: dict[str, Path]) -> dict[str, Path]:
    """The files of one small valid job."""
    return {"talk.mp4": media["face"], "voice.wav": media["voice"]}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_report(folder: Path) -> dict:
    return json.loads((folder / "report.json").read_text(encoding="utf-8"))


def media_duration(path: Path) -> float:
    """The container duration ffprobe reads from a finished file (fails on a truncated one)."""
    info = probe_duration(path)
    return float(info["format"]["duration"])


def job_folders(outbox: Path) -> list[Path]:
    """Published job folders (hidden staging and the status files excluded)."""
    return sorted(p for p in outbox.iterdir() if p.is_dir() and not p.name.startswith("."))
