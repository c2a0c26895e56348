"""Phone timings from a transcript: pocketsphinx 5 forced alignment (English).

pocketsphinx's wheel ships an English acoustic model and dictionary, so this
works offline.  Alignment is two passes: words (a grammar made from the
transcript), then phones inside them.  Measured facts: fast speech needs very
wide beams (1e-200) or the search dies; a word missing from the dictionary
must be added with a pronunciation or sub-word alignment cannot start, so
unknown words get a letter-by-letter guess (good enough for mouth shapes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

#: pocketsphinx frames are 10 ms
_FRAME_S = 0.01
_BEAM = 1e-200
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")
#: crude letter → phone guesses for words the dictionary lacks
_LETTERS = {
    "a": "AE", "b": "B", "c": "K", "d": "D", "e": "EH", "f": "F", "g": "G", "h": "HH", "i": "IH",
    "j": "JH", "k": "K", "l": "L", "m": "M", "n": "N", "o": "AA", "p": "P", "q": "K", "r": "R",
    "s": "S", "t": "T", "u": "AH", "v": "V", "w": "W", "x": "K S", "y": "Y", "z": "Z",
}


class AlignmentFailed(Exception):
    """The transcript could not be aligned to the audio (callers fall back to loudness)."""


@dataclass(frozen=True)
class Phone:
    """One aligned phone (ARPAbet without stress, or "SIL")."""

    name: str
    start_s: float
    end_s: float


def transcript_words(text: str) -> list[str]:
    """Lower-case English words of a transcript (punctuation and digits dropped)."""
    return _WORD.findall(text.lower().replace("\u2019", "'"))


def align_phones(samples: np.ndarray, rate: int, transcript: str) -> list[Phone]:
    """Phones of ``transcript`` timed against ``samples`` (16 kHz mono float)."""
    words = transcript_words(transcript)
    if not words:
        raise AlignmentFailed("the transcript has no English words")
    if rate != 16_000:
        raise AlignmentFailed(f"alignment needs 16 kHz audio, got {rate} Hz")
    try:
        from pocketsphinx import Decoder
    except ImportError as exc:
        raise AlignmentFailed(f"pocketsphinx is not installed ({exc})") from exc

    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    try:
        decoder = Decoder(samprate=rate, beam=_BEAM, wbeam=_BEAM, pbeam=_BEAM, loglevel="FATAL")
        for word in set(words):
            if decoder.lookup_word(word) is None:
                decoder.add_word(word, _guess_pronunciation(word), False)
        decoder.set_align_text(" ".join(words))
        _decode(decoder, pcm)
        decoder.set_alignment()
        _decode(decoder, pcm)
        alignment = decoder.get_alignment()
    except (RuntimeError, ValueError) as exc:
        raise AlignmentFailed(str(exc)) from exc
    if alignment is None:
        raise AlignmentFailed("no alignment found")
    phones = [
        Phone(phone.name, phone.start * _FRAME_S, (phone.start + phone.duration) * _FRAME_S)
        for word in alignment
        for phone in word
    ]
    if not any(p.name != "SIL" for p in phones):
        raise AlignmentFailed("the alignment holds no speech")
    return phones


def _decode(decoder, pcm: bytes) -> None:
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()


def _guess_pronunciation(word: str) -> str:
    letters = re.sub(r"(.)\1+", r"\1", word.replace("'", ""))
    return " ".join(_LETTERS[c] for c in letters if c in _LETTERS) or "AH"
