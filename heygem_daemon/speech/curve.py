"""The mouth-parameter curve an audio becomes: sampled on a fixed clock."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class MouthShape:
    """Mouth parameters at some output frames (arrays of equal length)."""

    #: 0 closed .. 1 wide open
    open: np.ndarray
    #: -1 narrow .. +1 spread (lip-corner distance)
    width: np.ndarray
    #: 0 neutral .. 1 rounded / pursed
    round: np.ndarray


@dataclass(frozen=True)
class MouthCurve:
    """Mouth parameters every ``1 / rate_hz`` seconds, the first at t = 0."""

    rate_hz: float
    open: np.ndarray
    width: np.ndarray
    round: np.ndarray
    #: "loudness", "transcript" or "phonemes:wav2vec2"
    source: str = "loudness"
    #: voiced (speech) flag per sample, for reports and tests
    voiced: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    @property
    def duration_s(self) -> float:
        return len(self.open) / self.rate_hz

    def times(self) -> np.ndarray:
        return np.arange(len(self.open)) / self.rate_hz

    def at(self, times_s: np.ndarray) -> MouthShape:
        """Linearly interpolated parameters at ``times_s``; closed and neutral outside the audio."""
        times = np.asarray(times_s, dtype=np.float64)
        grid = self.times()

        def sample(values: np.ndarray) -> np.ndarray:
            return np.interp(times, grid, values, left=0.0, right=0.0).astype(np.float32)

        return MouthShape(open=sample(self.open), width=sample(self.width), round=sample(self.round))
