"""The mouth curve for one audio: transcript visemes when they can be had, loudness always."""

from __future__ import annotations

import numpy as np
import structlog

from .curve import MouthCurve
from .loudness import loudness_curve

log = structlog.get_logger()


def mouth_curve(samples: np.ndarray, rate: int, *, transcript: str | None = None) -> MouthCurve:
    """Loudness-driven curve, refined by forced-aligned visemes when a transcript aligns."""
    curve = loudness_curve(samples, rate)
    if not transcript or not transcript.strip():
        return curve
    from .align import AlignmentFailed, align_phones
    from .visemes import apply_visemes

    try:
        phones = align_phones(samples, rate, transcript)
    except AlignmentFailed as exc:
        log.warning("speech.alignment_failed", reason=str(exc), fallback="loudness")
        return curve
    return apply_visemes(curve, phones)
