"""Shared fixtures for face-tracking tests: real frames from the sample media."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

MEDIA = Path(__file__).resolve().parents[2] / ".." / "shared" / "media"


def read_frames(path: Path, limit: int | None = None) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames: list[np.ndarray] = []
    try:
        while limit is None or len(frames) < limit:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame)
    finally:
        capture.release()
    return frames


@pytest.fixture(scope="session")
def face_1_frames() -> list[np.ndarray]:
    path = MEDIA / "face_1.mp4"
    if not path.is_file():
        pytest.skip(f"sample media not found at {MEDIA} (a fresh clone has none)")
    return read_frames(path, limit=60)
