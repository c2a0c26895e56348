"""How long a running job has left, from how fast its progress fraction has grown.

The clock starts at the job's first fraction, not when it started: audio analysis
comes before any fraction and says nothing about the speed of the videos.  A job
resumed at 40 % starts its clock at 40 %.  The rate is the mean over the whole run
so far, which changes slowly (a per-update rate jumps with every batch).
"""

from __future__ import annotations

from dataclasses import dataclass

#: no estimate before this much time and progress: the first seconds measure start-up
MIN_ELAPSED_S = 5.0
MIN_GAIN = 0.01


@dataclass
class Estimate:
    """One running job's estimate; feed it (fraction, monotonic time) as progress comes in."""

    _start: tuple[float, float] | None = None

    def update(self, fraction: float | None, now: float) -> float | None:
        """Seconds left, or None while there is too little to go on."""
        if fraction is None:
            return None
        if self._start is None or fraction < self._start[0]:
            self._start = (fraction, now)
            return None
        first, since = self._start
        gained, elapsed = fraction - first, now - since
        if elapsed < MIN_ELAPSED_S or gained < MIN_GAIN:
            return None
        return max(0.0, (1.0 - fraction) * elapsed / gained)
