"""The mouth curve for one audio, from the best source available.

Selection order: transcript alignment (pocketsphinx, English) → phonemes
from a wav2vec2 model (any language, when one is configured) → phones from
pocketsphinx's phone recogniser (the default: no transcript, no model to
configure) → loudness only.  Every source starts from the loudness curve
(which modulates how far the mouth opens); the phonetic ones set the shape
and the opening per phone (visemes).  A failing source is logged and the next
one is used: mouth shapes never fail a job.

Real mouths lead their sound: the lips and jaw move into a vowel before it is
heard.  The finished curve is advanced by ``LEAD_S`` whatever its source; the
self-reenactment benchmark measured the best lead on the shared clips at 40 ms
(``docs/lipsync-truth.md``).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..logging import get_logger
from .ctc import PhoneSegment
from .acoustic import AcousticModel
from .align import Phone
from .phones import recognize_phones
from .curve import MouthCurve
from .loudness import loudness_curve

log = get_logger()

#: ``samples -> timed IPA phones``; the engine binds model, device and cache
PhonemeSource = Callable[[np.ndarray], list[PhoneSegment]]
PHONEMES_SOURCE = "phonemes:wav2vec2"
#: ``(samples, rate) -> timed ARPAbet phones`` (phones.recognize_phones, here or in a worker process)
PhoneRecogniser = Callable[[np.ndarray, int], list[Phone]]
#: how far the mouth moves ahead of the sound (seconds)
LEAD_S = 0.040


def mouth_curve(
    samples: np.ndarray,
    rate: int,
    *,
    transcript: str | None = None,
    phonemes: PhonemeSource | None = None,
    recognise_phones: bool = True,
    lead_s: float = LEAD_S,
    acoustic: AcousticModel | None = None,
    phone_recogniser: PhoneRecogniser | None = None,
) -> MouthCurve:
    """The mouth curve from the best phonetic source available, advanced by ``lead_s``.

    ``recognise_phones=False`` skips the default phone recogniser (loudness only
    when no transcript or phoneme model is given); ``phone_recogniser`` runs it
    elsewhere (the engine's worker process, phone_worker.py) instead of in this
    thread.  ``acoustic`` (the engine passes the shipped regressor) blends the
    spectrum's opinion into a phonetic curve.
    """
    recogniser = (phone_recogniser or recognize_phones) if recognise_phones else None
    return _best_curve(samples, rate, transcript, phonemes, recogniser, acoustic).advanced(lead_s)


def _best_curve(samples, rate, transcript, phonemes, recogniser, acoustic) -> MouthCurve:
    curve = loudness_curve(samples, rate)
    # the spectrum's opinion, for whichever phonetic source wins below
    opinion = acoustic.predict(samples, rate) if acoustic is not None and curve.voiced.any() else None
    if transcript and transcript.strip():
        shaped = _transcript_curve(curve, samples, rate, transcript, opinion)
        if shaped is not None:
            return shaped
    if phonemes is not None:
        shaped = _phoneme_curve(curve, samples, phonemes, opinion)
        if shaped is not None:
            return shaped
    if recogniser is not None and curve.voiced.any():
        shaped = _recognised_curve(curve, samples, rate, opinion, recogniser)
        if shaped is not None:
            return shaped
    return curve


def _recognised_curve(curve: MouthCurve, samples: np.ndarray, rate: int, opinion,
                      recogniser: PhoneRecogniser) -> MouthCurve | None:
    from .phones import SOURCE, PhoneRecognitionFailed
    from .visemes import apply_visemes

    try:
        phones = recogniser(samples, rate)
    except PhoneRecognitionFailed as exc:
        log.warning("phones_failed", reason=str(exc), fallback="loudness")
        return None
    if not any(p.name != "SIL" for p in phones):
        log.info("phones_empty", fallback="loudness")
        return None
    return apply_visemes(curve, phones, source=SOURCE, acoustic=opinion)


def _transcript_curve(curve: MouthCurve, samples: np.ndarray, rate: int, transcript: str,
                      opinion) -> MouthCurve | None:
    from .align import AlignmentFailed, align_phones
    from .visemes import apply_visemes

    try:
        phones = align_phones(samples, rate, transcript)
    except AlignmentFailed as exc:
        log.warning("alignment_failed", reason=str(exc), fallback="next source")
        return None
    return apply_visemes(curve, phones, acoustic=opinion)


def _phoneme_curve(curve: MouthCurve, samples: np.ndarray, phonemes: PhonemeSource, opinion) -> MouthCurve | None:
    from .ipa import segments_to_phones
    from .visemes import apply_visemes

    try:
        segments = phonemes(samples)
    # the model runs third-party code on a GPU or CPU (out-of-memory, driver and
    # shape errors...); a phoneme model is only one source of mouth shapes, so any
    # failure here means "use the next source", never a failed job
    except Exception as exc:  # noqa: BLE001
        log.error("phonemes_failed", reason=f"{type(exc).__name__}: {exc}", fallback="next source")
        return None
    if not segments:
        log.info("phonemes_empty", fallback="next source")
        return None
    return apply_visemes(curve, segments_to_phones(segments), source=PHONEMES_SOURCE, acoustic=opinion)
