"""Phones → mouth shapes (visemes), merged with the loudness curve.

Loudness still sets how far the mouth opens (it follows stress and volume);
the visemes shape it: lips shut on m/b/p, nearly shut on f/v, rounded on
o/u/w, spread on i/e, widest on a.  Targets are blended over ~25 ms either
side, a simple stand-in for coarticulation.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .align import Phone
from .curve import MouthCurve
from .dsp import gaussian_smooth

#: phone → (opening factor 0..1, width -1..1, rounding 0..1)
VISEMES: dict[str, tuple[float, float, float]] = {
    **dict.fromkeys(("M", "B", "P"), (0.0, 0.0, 0.0)),
    **dict.fromkeys(("F", "V"), (0.15, 0.1, 0.0)),
    **dict.fromkeys(("UW", "UH", "W"), (0.45, -0.8, 1.0)),
    **dict.fromkeys(("OW", "AO", "OY"), (0.8, -0.6, 0.8)),
    **dict.fromkeys(("SH", "ZH", "CH", "JH", "R"), (0.4, -0.4, 0.6)),
    **dict.fromkeys(("IY", "IH", "EY", "Y"), (0.55, 0.9, 0.0)),
    **dict.fromkeys(("EH", "AE"), (0.85, 0.6, 0.0)),
    **dict.fromkeys(("AA", "AH", "AW", "AY", "ER"), (1.0, 0.1, 0.0)),
    **dict.fromkeys(("S", "Z", "T", "D", "N", "TH", "DH"), (0.35, 0.5, 0.0)),
    **dict.fromkeys(("L", "K", "G", "NG", "HH"), (0.55, 0.2, 0.0)),
    "SIL": (0.0, 0.0, 0.0),
}
_DEFAULT = (0.6, 0.0, 0.0)
_CLOSURES = frozenset(("M", "B", "P"))
COARTICULATION_S = 0.025


def apply_visemes(curve: MouthCurve, phones: list[Phone], *, source: str = "transcript") -> MouthCurve:
    """The loudness curve reshaped by timed phones; ``source`` names where they came from.

    ``phones`` are named by ARPAbet class: forced-aligned English phones as they
    are, IPA phones from a phoneme model after :func:`.ipa.segments_to_phones`.
    """
    count = len(curve.open)
    factor = np.ones(count)
    width = np.zeros(count)
    rounding = np.zeros(count)
    for phone in phones:
        lo = max(0, int(round(phone.start_s * curve.rate_hz)))
        hi = min(count, max(lo + 1, int(round(phone.end_s * curve.rate_hz))))
        factor[lo:hi], width[lo:hi], rounding[lo:hi] = VISEMES.get(phone.name, _DEFAULT)
    sigma = COARTICULATION_S * curve.rate_hz
    factor, width, rounding = (gaussian_smooth(a, sigma) for a in (factor, width, rounding))
    # Loudness decides how much, the viseme decides the shape; a little loudness
    # opening is kept for consonants so speech never looks frozen.
    opening = curve.open * (0.4 + 0.6 * factor)
    # Bilabial closures must really shut the lips, however loud the neighbours are.
    shut = np.array([name in _CLOSURES for name in _names(phones, count, curve.rate_hz)], dtype=float)
    opening = opening * (1.0 - 0.9 * np.clip(gaussian_smooth(shut, sigma * 0.6), 0.0, 1.0))
    return replace(
        curve,
        open=np.clip(opening, 0.0, 1.0).astype(np.float32),
        width=np.clip(width, -1.0, 1.0).astype(np.float32),
        round=np.clip(rounding, 0.0, 1.0).astype(np.float32),
        source=source,
    )


def _names(phones: list[Phone], count: int, rate_hz: float) -> list[str]:
    """Phone name per curve sample ("SIL" where none)."""
    names = ["SIL"] * count
    for phone in phones:
        lo = max(0, int(round(phone.start_s * rate_hz)))
        hi = min(count, max(lo + 1, int(round(phone.end_s * rate_hz))))
        names[lo:hi] = [phone.name] * (hi - lo)
    return names
