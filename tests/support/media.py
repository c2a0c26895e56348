"""Where the shared sample media lie (beside the checkout), and how a test asks for one file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

#: shared/media beside the repository: real talking heads and voices (a fresh clone has none)
SHARED_MEDIA = Path(__file__).resolve().parents[2] / ".." / "shared" / "media"


def sample_media(name: str) -> Path:
    """The sample file ``name``; the calling test is skipped, with the reason, when it is absent."""
    path = SHARED_MEDIA / name
    if not path.is_file():
        pytest.skip(f"sample media not found at {SHARED_MEDIA} (a fresh clone has none)")
    return path.resolve()


def read_frames(path: Path, limit: int | None = None) -> list[np.ndarray]:
    """The first ``limit`` frames (all without one) of a video, BGR, as OpenCV decodes them."""
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
