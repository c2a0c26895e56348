"""Value types every layer shares: decoded audio and a tracked face.

The bottom of the package (with ``fsutil``, ``errors``, ``logging`` and
``settings``): media decodes into these, faces tracks into these, engines take
them; this module imports nothing of ours, so none of them imports another to
name a value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: the rate of every decoded AudioClip (what the speech models and engines expect)
SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class AudioClip:
    """A job's audio decoded once: 16 kHz mono float32 in [-1, 1]."""

    samples: NDArray[np.float32]
    sample_rate: int = SAMPLE_RATE
    #: content hash of the source file, for feature caches
    digest: str = ""

    @property
    def duration_s(self) -> float:
        return len(self.samples) / float(self.sample_rate)


@dataclass(frozen=True)
class Face:
    """One tracked face in one frame, in pixel coordinates of that frame."""

    #: x0, y0, x1, y1
    box: NDArray[Any]
    #: (K, 2) landmark points (x, y); None when the tracker gives only a box
    landmarks: NDArray[Any] | None = None
    score: float = 1.0
