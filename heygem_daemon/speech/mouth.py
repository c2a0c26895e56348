"""The mouth curve for one audio, from the best source available.

Selection order: transcript alignment (pocketsphinx, English) → phonemes
from a wav2vec2 model (any language, when one is configured) → loudness only.
Every source starts from the loudness curve (how far the mouth opens); the
first two shape it with visemes (which shape it makes).  A failing refinement
is logged and the next source is used: mouth shapes never fail a job.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import structlog

from .ctc import PhoneSegment
from .curve import MouthCurve
from .loudness import loudness_curve

log = structlog.get_logger()

#: ``samples -> timed IPA phones``; the engine binds model, device and cache
PhonemeSource = Callable[[np.ndarray], list[PhoneSegment]]
PHONEMES_SOURCE = "phonemes:wav2vec2"


def mouth_curve(
    samples: np.ndarray,
    rate: int,
    *,
    transcript: str | None = None,
    phonemes: PhonemeSource | None = None,
) -> MouthCurve:
    """Loudness-driven curve, shaped by transcript visemes or recognised phonemes when available."""
    curve = loudness_curve(samples, rate)
    if transcript and transcript.strip():
        shaped = _transcript_curve(curve, samples, rate, transcript)
        if shaped is not None:
            return shaped
    if phonemes is not None:
        shaped = _phoneme_curve(curve, samples, phonemes)
        if shaped is not None:
            return shaped
    return curve


def _transcript_curve(curve: MouthCurve, samples: np.ndarray, rate: int, transcript: str) -> MouthCurve | None:
    from .align import AlignmentFailed, align_phones
    from .visemes import apply_visemes

    try:
        phones = align_phones(samples, rate, transcript)
    except AlignmentFailed as exc:
        log.warning("speech.alignment_failed", reason=str(exc), fallback="next source")
        return None
    return apply_visemes(curve, phones)


def _phoneme_curve(curve: MouthCurve, samples: np.ndarray, phonemes: PhonemeSource) -> MouthCurve | None:
    from .ipa import segments_to_phones
    from .visemes import apply_visemes

    try:
        segments = phonemes(samples)
    # the model runs third-party code on a GPU or CPU (out-of-memory, driver and
    # shape errors...); phonemes only refine the loudness curve, so any failure
    # here means "use loudness", never a failed job
    except Exception as exc:  # noqa: BLE001
        log.error("speech.phonemes_failed", reason=f"{type(exc).__name__}: {exc}", fallback="loudness")
        return None
    if not segments:
        log.info("speech.phonemes_empty", fallback="loudness")
        return None
    return apply_visemes(curve, segments_to_phones(segments), source=PHONEMES_SOURCE)
