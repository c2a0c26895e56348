"""Where the shared sample media lie (beside the checkout), and how a test asks for one file."""

from __future__ import annotations

from pathlib import Path

import pytest

#: shared/media beside the repository: real talking heads and voices (a fresh clone has none)
SHARED_MEDIA = Path(__file__).resolve().parents[2] / ".." / "shared" / "media"


def sample_media(name: str) -> Path:
    """The sample file ``name``; the calling test is skipped, with the reason, when it is absent."""
    path = SHARED_MEDIA / name
    if not path.is_file():
        pytest.skip(f"sample media not found at {SHARED_MEDIA} (a fresh clone has none)")
    return path.resolve()
