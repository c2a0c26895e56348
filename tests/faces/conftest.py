"""Shared fixtures for face-tracking tests: real frames from the sample media."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.support.media import sample_media



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
    return read_frames(sample_media("face_1.mp4"), limit=60)
