"""Phones → mouth shapes (visemes), with loudness modulating how far.

The phone decides the shape and its opening: lips shut on m/b/p, nearly shut
on f/v, rounded on o/u/w, spread on i/e, widest on a, closed in pauses.
Loudness only modulates the amplitude (stress and volume), so a loud
consonant no longer opens the mouth like a vowel.  Targets are blended with a
Gaussian of ``COARTICULATION_S`` (neighbouring phones shape each other), which
with the lead applied in :mod:`.mouth` was tuned on the self-reenactment
benchmark (``benchmarks/truth_sync.py``).  Where no phone is known (a gap
between recognised phones) the loudness curve alone decides.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .acoustic import blend
from .align import Phone
from .curve import MouthCurve
from .dsp import gaussian_smooth

#: phone → (opening factor 0..1, width -1..1, rounding 0..1).  The openings
#: were tuned by coordinate search on the self-reenactment benchmark over the
#: shared clips (mean r of the curve alone with real mouths 0.27 → 0.33).
VISEMES: dict[str, tuple[float, float, float]] = {
    **dict.fromkeys(("M", "B", "P"), (0.0, 0.0, 0.0)),
    **dict.fromkeys(("F", "V"), (0.0, 0.1, 0.0)),
    **dict.fromkeys(("UW", "UH", "W"), (0.0, -0.8, 1.0)),
    **dict.fromkeys(("OW", "AO", "OY"), (0.45, -0.6, 0.8)),
    **dict.fromkeys(("SH", "ZH", "CH", "JH", "R"), (0.45, -0.4, 0.6)),
    **dict.fromkeys(("IY", "IH", "EY", "Y"), (0.8, 0.9, 0.0)),
    **dict.fromkeys(("EH", "AE"), (1.0, 0.6, 0.0)),
    **dict.fromkeys(("AA", "AH", "AW", "AY", "ER"), (0.9, 0.1, 0.0)),
    **dict.fromkeys(("S", "Z", "T", "D", "N", "TH", "DH"), (0.6, 0.5, 0.0)),
    **dict.fromkeys(("L", "K", "G", "NG", "HH"), (0.8, 0.2, 0.0)),
    "SIL": (0.0, 0.0, 0.0),
}
_DEFAULT = (0.6, 0.0, 0.0)
_CLOSURES = frozenset(("M", "B", "P"))
#: coarticulation blend (Gaussian sigma); 40 ms scored best against real mouths
COARTICULATION_S = 0.040
#: share of the opening that loudness modulates (0: phones alone, 1: phones x loudness)
LOUDNESS_SHARE = 0.6
#: share of the acoustic regressor's opinion in the opening (0.3–0.5 scored alike, leave-one-clip-out)
ACOUSTIC_SHARE = 0.4
#: loudness curve value taken as "full voice" (the curve reaches 1 only at its peaks)
_FULL_VOICE = 0.67


def apply_visemes(curve: MouthCurve, phones: list[Phone], *, source: str = "transcript",
                  acoustic: np.ndarray | None = None) -> MouthCurve:
    """The loudness curve reshaped by timed phones; ``source`` names where they came from.

    ``phones`` are named by ARPAbet class: forced-aligned English phones as they
    are, IPA phones from a phoneme model after :func:`.ipa.segments_to_phones`.
    """
    count = len(curve.open)
    # NaN marks samples no phone covers: there loudness alone decides
    factor = np.full(count, np.nan)
    width = np.zeros(count)
    rounding = np.zeros(count)
    for phone in phones:
        lo = max(0, int(round(phone.start_s * curve.rate_hz)))
        hi = min(count, max(lo + 1, int(round(phone.end_s * curve.rate_hz))))
        factor[lo:hi], width[lo:hi], rounding[lo:hi] = VISEMES.get(phone.name, _DEFAULT)
    loud = np.clip(curve.open / _FULL_VOICE, 0.0, 1.0)
    factor = np.where(np.isnan(factor), loud, factor)
    sigma = COARTICULATION_S * curve.rate_hz
    factor, width, rounding = (gaussian_smooth(a, sigma) for a in (factor, width, rounding))
    opening = factor * ((1.0 - LOUDNESS_SHARE) + LOUDNESS_SHARE * loud)
    if acoustic is not None and len(acoustic):
        # the spectrum's opinion (speech/acoustic.py) on top of the phones'; the
        # closure and silence rules below still have the last word
        opening = blend(opening, acoustic, ACOUSTIC_SHARE)
    if len(curve.voiced) == count:
        # a recogniser "hears" phones in noise and digital silence too: where
        # the voice detector hears nothing, the mouth rests
        opening = opening * np.clip(gaussian_smooth(curve.voiced.astype(float), sigma), 0.0, 1.0)
    # Bilabial closures must really shut the lips, however loud the neighbours are.
    shut = np.array([name in _CLOSURES for name in _names(phones, count, curve.rate_hz)], dtype=float)
    opening = opening * (1.0 - 0.9 * np.clip(gaussian_smooth(shut, sigma * 0.4), 0.0, 1.0))
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
