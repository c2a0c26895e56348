"""Fixtures every test folder shares: the sample media."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.media import sample_media


@pytest.fixture
def media_dir() -> Path:
    """The shared sample media folder; tests that need it skip without it."""
    return sample_media("face_1.mp4").parent
