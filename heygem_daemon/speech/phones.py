"""Timed phones from any speech, with no transcript: pocketsphinx's phone recogniser.

pocketsphinx's wheel ships an English acoustic model and a phone language
model (``en-us-phone.lm.bin``); its ``allphone`` mode decodes phones straight
from the sound.  The phones are often wrong in detail, but *which kind* of
sound it is (a vowel, a closure, a fricative, a pause) is what the mouth shows,
and that it gets right far more often than loudness alone can tell
(``benchmarks/truth_sync.py``).  It runs offline at roughly 10x real time on
one CPU core.

Long audio is decoded in windows of ``WINDOW_S`` seconds (one utterance each),
so memory and search time stay bounded on hour-long recordings; a phone cut at
a window edge costs at most one mouth shape.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .align import Phone

#: pocketsphinx frames are 10 ms
_FRAME_S = 0.01
WINDOW_S = 30.0
#: a language-model weight of 2 (pocketsphinx's docs for phone decoding) and
#: wide beams: the phone loop is small, so a wide search is still fast
_LANGUAGE_WEIGHT = 2.0
_BEAM = 1e-20
SOURCE = "phones:pocketsphinx"
#: what the phones of an audio depend on besides its samples (the phone cache's model identity)
IDENTITY = f"pocketsphinx-allphone-lw{_LANGUAGE_WEIGHT:g}-beam{_BEAM:g}-window{WINDOW_S:g}"


class PhoneRecognitionFailed(Exception):
    """The phone recogniser could not run (callers fall back to loudness)."""


def recognize_phones(samples: np.ndarray, rate: int, *, decoder: Any = None) -> list[Phone]:
    """Phones (ARPAbet, "SIL" for pauses) recognised in ``samples`` (16 kHz mono float), with
    ``decoder`` (a fresh one from ``open_decoder``, or one put back by ``reset_decoder``: one that
    has decoded audio since gives other phones) or one opened here."""
    if rate != 16_000:
        raise PhoneRecognitionFailed(f"phone recognition needs 16 kHz audio, got {rate} Hz")
    decoder = open_decoder() if decoder is None else decoder
    window = int(WINDOW_S * rate)
    phones: list[Phone] = []
    for start in range(0, len(samples), window):
        chunk = samples[start : start + window]
        offset = start / rate
        phones += [Phone(name, offset + a, offset + b) for name, a, b in _decode(decoder, chunk)]
    return phones


def open_decoder():
    try:
        from pocketsphinx import Decoder, get_model_path
    except ImportError as exc:
        raise PhoneRecognitionFailed(f"pocketsphinx is not installed ({exc})") from exc
    phone_lm = os.path.join(get_model_path(), "en-us", "en-us-phone.lm.bin")
    if not os.path.isfile(phone_lm):
        raise PhoneRecognitionFailed(f"pocketsphinx's phone model is missing ({phone_lm})")
    try:
        return Decoder(allphone=phone_lm, lw=_LANGUAGE_WEIGHT, beam=_BEAM, pbeam=_BEAM, loglevel="FATAL")
    except (RuntimeError, ValueError) as exc:
        raise PhoneRecognitionFailed(f"pocketsphinx could not start: {exc}") from exc


def reset_decoder(decoder: Any) -> None:
    """Put a used decoder back to how ``open_decoder`` gave it, for the next audio.

    What a decoder carries from one audio to the next is its feature stage's cepstral mean;
    reinitialising that stage gives the phones of a fresh decoder (tests/speech), at a fifth of
    the cost of opening one (0.015 against 0.07 s of CPU: the acoustic model stays loaded)."""
    try:
        decoder.reinit_feat()
    except (RuntimeError, ValueError) as exc:
        raise PhoneRecognitionFailed(f"pocketsphinx could not reset its decoder: {exc}") from exc


def _decode(decoder, chunk: np.ndarray) -> list[tuple[str, float, float]]:
    pcm = (np.clip(chunk, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    try:
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        segments = list(decoder.seg())
    except (RuntimeError, ValueError) as exc:
        raise PhoneRecognitionFailed(str(exc)) from exc
    # noise and filler units (+SPN+, +NSN+, <sil>) show as a closed mouth
    return [(_name(s.word), s.start_frame * _FRAME_S, (s.end_frame + 1) * _FRAME_S) for s in segments]


def _name(word: str) -> str:
    return "SIL" if word.startswith(("+", "<")) or word == "SIL" else word
