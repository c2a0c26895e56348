"""Shared fixtures for face-tracking tests: real frames from the sample media."""

from __future__ import annotations


import numpy as np
import pytest

from tests.support.media import read_frames, sample_media



@pytest.fixture(scope="session")
def face_1_frames() -> list[np.ndarray]:
    return read_frames(sample_media("face_1.mp4"), limit=60)
