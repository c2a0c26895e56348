"""Which frame becomes an output's poster: the moment that shows the result best.

The moment is chosen while the video renders (the still is cut later, by
``jobs/poster.py``, once the output is final), from what is known per frame: whether
it has a face, and how far the voice opens the mouth there.  Opening comes from the
speech-band loudness of the job's audio (speech.loudness), the same measure
ARCHITECTURE §7 checks the output's mouth against; it is the engine's target for
every engine, since all of them animate the mouth from that audio.  A still of the
loudest voiced frame with a face shows the mouth open; when nothing is voiced the
frame nearest 40 % of the video stands in (past the start, where people settle).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

import numpy as np
from numpy.typing import NDArray

#: where in the video the fallback moment lies (a fraction of its length)
FALLBACK_AT = 0.4


class OpeningCurve(Protocol):
    """Mouth opening over time (speech.curve.MouthCurve satisfies it)."""

    def at(self, times_s: NDArray[np.float64]) -> Any: ...


@dataclass
class PosterMoment:
    """Keeps the best frame for a poster as batches of rendered frames go by."""

    fps: float
    duration_s: float
    #: the voice's mouth opening over output time; None: faces alone decide
    opening: OpeningCurve | None = None
    #: (opening, closeness to FALLBACK_AT), the output frame number
    _best: tuple[tuple[float, float], int] | None = field(default=None, init=False)

    def see(self, outs: NDArray[np.int64], has_face: Sequence[bool]) -> None:
        """Consider a batch: ``outs`` are output frame numbers, ``has_face`` per frame."""
        rows = [b for b, found in enumerate(has_face) if found]
        if not rows:
            return
        times = (np.asarray(outs, dtype=np.float64)[rows] + 0.5) / self.fps
        opening = np.zeros(len(rows)) if self.opening is None else np.asarray(self.opening.at(times).open, float)
        for t, value, row in zip(times, opening, rows):
            key = (round(float(value), 3), -abs(t - FALLBACK_AT * self.duration_s))
            if self._best is None or key > self._best[0]:
                self._best = (key, int(outs[row]))

    @property
    def at_s(self) -> float | None:
        """The middle of the chosen frame in output seconds; None when no frame had a face."""
        if self._best is None:
            return None
        return round((self._best[1] + 0.5) / self.fps, 3)
