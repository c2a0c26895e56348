"""Real speech for the speech-analysis tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

MEDIA = Path(__file__).resolve().parents[2] / ".." / "shared" / "media"
RATE = 16_000


@pytest.fixture(scope="session")
def speech_1() -> np.ndarray:
    """audio_1.wav (English) as 16 kHz mono float32."""
    path = MEDIA / "audio_1.wav"
    if not path.is_file():
        pytest.skip(f"sample media not found at {MEDIA} (a fresh clone has none)")
    librosa = pytest.importorskip("librosa")
    samples, _ = librosa.load(str(path), sr=RATE, mono=True)
    return samples.astype(np.float32)
