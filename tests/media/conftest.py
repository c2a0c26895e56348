"""Fixtures for the media tests: real ffmpeg, real sample media, no leaks."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path
from typing import Callable

import psutil
import pytest

from heygem_daemon.settings import LimitSettings

@pytest.fixture
def limits() -> LimitSettings:
    """The default limits."""
    return LimitSettings()


def _ffmpeg_children() -> list[psutil.Process]:
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.name() in ("ffmpeg", "ffprobe") and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def _stderr_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("ffmpeg-stderr")]


@pytest.fixture(autouse=True)
def _no_ffmpeg_leaks():
    """Fail any test that leaves an ffmpeg process or a stderr thread behind."""
    yield
    assert [] == [p.pid for p in _ffmpeg_children()]
    assert [] == [t.name for t in _stderr_threads()]


def _run_ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


@pytest.fixture
def run_ffmpeg() -> Callable[..., None]:
    """Make a test input with ffmpeg (trusted arguments, so plain ffmpeg is fine here)."""
    return _run_ffmpeg


@pytest.fixture
def make_video(tmp_path: Path) -> Callable[..., Path]:
    """Factory: a small testsrc2 clip (optionally with a sine tone) in tmp_path."""

    def make(
        name: str = "clip.mp4", *, size: str = "160x120", rate: int = 25, seconds: float = 1.0, audio: bool = False
    ) -> Path:
        out = tmp_path / name
        args = ["-f", "lavfi", "-i", f"testsrc2=s={size}:r={rate}:d={seconds}"]
        if audio:
            args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:d={seconds}"]
        args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
        args += ["-c:a", "aac"] if audio else []
        _run_ffmpeg(*args, str(out))
        return out

    return make


@pytest.fixture
def make_tone(tmp_path: Path) -> Callable[..., Path]:
    """Factory: a sine-tone WAV of the given length in tmp_path."""

    def make(name: str = "tone.wav", *, seconds: float = 1.0, rate: int = 44100) -> Path:
        out = tmp_path / name
        _run_ffmpeg("-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={rate}:d={seconds}", str(out))
        return out

    return make
