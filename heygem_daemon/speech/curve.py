"""The mouth-parameter curve an audio becomes: sampled on a fixed clock."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

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
    #: "loudness", "transcript", "phonemes:wav2vec2" or "phones:pocketsphinx"
    source: str = "loudness"
    #: voiced (speech) flag per sample, for reports and tests
    voiced: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    @property
    def duration_s(self) -> float:
        return len(self.open) / self.rate_hz

    def times(self) -> np.ndarray:
        return np.arange(len(self.open)) / self.rate_hz

    def advanced(self, seconds: float) -> "MouthCurve":
        """The curve moved ``seconds`` earlier (the mouth leads the sound); the end holds rest."""
        shift = int(round(seconds * self.rate_hz))
        if shift <= 0 or len(self.open) == 0:
            return self

        def early(values: np.ndarray, rest: float | bool) -> np.ndarray:
            out = np.full_like(values, rest)
            out[: max(0, len(values) - shift)] = values[shift:]
            return out

        return replace(self, open=early(self.open, 0.0), width=early(self.width, 0.0),
                       round=early(self.round, 0.0), voiced=early(self.voiced, False))

    def at(self, times_s: np.ndarray) -> MouthShape:
        """Linearly interpolated parameters at ``times_s``; closed and neutral outside the audio."""
        times = np.asarray(times_s, dtype=np.float64)
        grid = self.times()

        def sample(values: np.ndarray) -> np.ndarray:
            return np.interp(times, grid, values, left=0.0, right=0.0).astype(np.float32)

        return MouthShape(open=sample(self.open), width=sample(self.width), round=sample(self.round))
