"""Real speech for the speech-analysis tests."""

from __future__ import annotations


import numpy as np
import pytest

from tests.support.media import sample_media

RATE = 16_000


@pytest.fixture(scope="session")
def speech_1() -> np.ndarray:
    """audio_1.wav (English) as 16 kHz mono float32."""
    path = sample_media("audio_1.wav")
    librosa = pytest.importorskip("librosa")
    samples, _ = librosa.load(str(path), sr=RATE, mono=True)
    return samples.astype(np.float32)
