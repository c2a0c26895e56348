"""Fixtures for the reliability suite: the daemon-test helpers plus tiny real media.

The real daemon runs as a subprocess (tests/daemon/conftest.py); media is cut
small once per session so hundreds of jobs fit the CI budget on a 2-core box.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.daemon.conftest import (  # noqa: F401 -- fixtures re-exported for this folder
    DaemonProc,
    daemon_factory,
    drop_job,
    folders,
    probe_duration,
    wait_for,
)
from tests.support.media import sample_media


@pytest.fixture(scope="session")
def tiny_media(tmp_path_factory) -> dict[str, Path]:
    """A real talking face (face_5) cut to 1.5 s at 256x256 and 1.5 s of real speech."""
    face_5, audio_2 = sample_media("face_5.mp4"), sample_media("audio_2.wav")
    out = tmp_path_factory.mktemp("tiny_media")
    face, voice = out / "face.mp4", out / "voice.wav"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y", "-ss", "0.5", "-t", "1.5", "-i", str(face_5),
         "-vf", "scale=256:256", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "28",
         "-c:a", "aac", "-b:a", "64k", str(face)], check=True, timeout=60,
    )
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y", "-ss", "0.5", "-t", "1.5", "-i", str(audio_2),
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


class InotifySpy:
    """Records every open, read or write of the watched paths (files and folders).

    A watch on a file reports access through any name, hard links included; a
    watch on a folder reports its entries.  Stat calls are not reads and don't count.
    """

    IN_ACCESS, IN_MODIFY, IN_ATTRIB, IN_OPEN = 0x1, 0x2, 0x4, 0x20
    IN_CREATE, IN_DELETE, IN_MOVED_FROM, IN_MOVED_TO = 0x100, 0x200, 0x40, 0x80
    IN_NONBLOCK = 0o4000

    def __init__(self, paths: list[Path]) -> None:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self.fd = libc.inotify_init1(self.IN_NONBLOCK)
        if self.fd < 0:
            pytest.skip("inotify is not available here")
        # not IN_ATTRIB: removing a job's own hard link to a file changes that file's
        # link count, which is no access to it (callers compare stat() for metadata)
        mask = (self.IN_ACCESS | self.IN_MODIFY | self.IN_OPEN | self.IN_CREATE
                | self.IN_DELETE | self.IN_MOVED_FROM | self.IN_MOVED_TO)
        self.watches: dict[int, Path] = {}
        for path in paths:
            wd = libc.inotify_add_watch(self.fd, os.fsencode(path), mask)
            assert wd >= 0, f"cannot watch {path}"
            self.watches[wd] = path

    def events(self) -> list[str]:
        import struct

        found: list[str] = []
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return found
            offset = 0
            while offset < len(data):
                wd, mask, _cookie, size = struct.unpack_from("iIII", data, offset)
                name = data[offset + 16 : offset + 16 + size].rstrip(b"\0").decode(errors="replace")
                found.append(f"{self.watches.get(wd)}/{name} mask={mask:#x}")
                offset += 16 + size

    def close(self) -> None:
        os.close(self.fd)
