"""IPA phones (from a multilingual phoneme recogniser) → the engine's viseme classes.

There is ONE table of mouth shapes, :data:`heygem_daemon.speech.visemes.VISEMES`,
keyed by ARPAbet names.  This module only says which ARPAbet class each IPA
symbol looks like on the lips, so an IPA phone gets exactly the shape the
English transcript path gives its closest English phone:

======================  ==========================================  ==============
lips                    IPA (English and Mandarin included)         class
======================  ==========================================  ==============
closed                  p b m ɓ (Mandarin b p m = p pʰ m)           P B M
lower lip to teeth      f v ʋ ɱ                                     F V
rounded, small          u ʊ ʉ w ɥ y ʏ (Mandarin ü = y)              UW UH W
rounded, open           o ɔ ɒ ø œ ɵ                                 OW AO
rounded, protruded      ʃ ʒ tʃ dʒ, retroflex ʂ ʐ ʈʂ ɖʐ, ɹ ɻ r     SH ZH CH JH R
spread                  i ɪ e j ɨ ɯ ᵻ (Mandarin -i in zi/shi = ɨ)   IY IH EY Y
spread, open            ɛ æ                                         EH AE
open                    a ɑ ɐ ʌ ə ɤ ɚ ɝ ɜ (Mandarin e = ɤ)          AA AH ER
teeth nearly together   s z ts dz θ ð t d n ɾ, alveolo-palatal      S Z T D ...
                        ɕ ʑ tɕ dʑ (Mandarin x j q: spread, not round)
relaxed                 k g ŋ x ɣ h ɦ l ʔ (Mandarin h = x)         K G NG HH L
======================  ==========================================  ==============

Tokens are normalised first: stress ˈ ˌ, length ː ˑ, tone letters ˥˦˧˨˩ and
digits, aspiration ʰ and other modifier letters, and combining diacritics are
stripped (Mandarin pʰ is p, tʰ is t, aʊ˥˩ is aʊ).  An affricate (ts, tɕ, ʈʂ,
tʃ...) is one phone; any other multi-symbol token (a diphthong "aɪ", a
triphthong "iaʊ") is split into its symbols, which share the token's time.
Unknown symbols get a neutral half-open shape and are logged once per audio.
"""

from __future__ import annotations

import unicodedata

from ..logging import get_logger
from .align import Phone
from .ctc import PhoneSegment
from .visemes import _DEFAULT as VISEMES_DEFAULT
from .visemes import VISEMES

log = get_logger()

#: single IPA symbol → the ARPAbet class whose viseme it shares
IPA_TO_CLASS: dict[str, str] = {
    # closures
    "p": "P", "b": "B", "m": "M", "ɓ": "B",
    # labiodentals
    "f": "F", "v": "V", "ʋ": "V", "ɱ": "F",
    # rounded
    "u": "UW", "ʉ": "UW", "y": "UW", "ʊ": "UH", "ʏ": "UH", "w": "W", "ɥ": "W", "ʍ": "W",
    "o": "OW", "ø": "OW", "ɵ": "OW", "ɔ": "AO", "ɒ": "AO", "œ": "AO",
    # post-alveolar and retroflex (lips slightly protruded)
    "ʃ": "SH", "ʒ": "ZH", "ʂ": "SH", "ʐ": "ZH", "ɹ": "R", "ɻ": "R", "r": "R", "ʀ": "R", "ʁ": "R",
    # spread
    "i": "IY", "ɪ": "IH", "ɨ": "IH", "ɯ": "IH", "ᵻ": "IH", "e": "EY", "j": "Y",
    "ɛ": "EH", "æ": "AE",
    # open
    "a": "AA", "ɑ": "AA", "ä": "AA", "ɐ": "AH", "ʌ": "AH", "ə": "AH", "ɤ": "AH", "ɘ": "AH",
    "ɚ": "ER", "ɝ": "ER", "ɜ": "ER",
    # teeth nearly together, tongue tip
    "s": "S", "z": "Z", "θ": "TH", "ð": "DH", "t": "T", "d": "D", "n": "N", "ɾ": "D",
    "ʈ": "T", "ɖ": "D", "ɳ": "N", "ɕ": "S", "ʑ": "Z", "ɲ": "N", "c": "T", "ɟ": "D",
    # relaxed: tongue back, throat, laterals
    "k": "K", "g": "G", "ɡ": "G", "ŋ": "NG", "x": "HH", "ɣ": "G", "h": "HH", "ɦ": "HH",
    "q": "K", "χ": "HH", "ʔ": "HH", "l": "L", "ɫ": "L", "ɭ": "L", "ʎ": "L",
}

#: multi-symbol tokens that are ONE articulation (affricates), after normalisation
AFFRICATES: dict[str, str] = {
    "tʃ": "CH", "dʒ": "JH", "ʈʂ": "CH", "ɖʐ": "JH",
    "ts": "S", "dz": "Z", "tɕ": "S", "dʑ": "Z", "pf": "F",
}

#: removed before lookup: stress, length, tones, ties, syllable breaks
_DROP = set("ˈˌːˑ˥˦˧˨˩ˀ‿.·͜͡-|0123456789")
#: class for a symbol this table does not know: half open, neutral
UNKNOWN_CLASS = "?"
SILENCE_CLASS = "SIL"


def normalise(token: str) -> str:
    """Stress, length, tones, modifier letters (ʰ ʲ ʷ) and combining diacritics removed."""
    kept = []
    for char in unicodedata.normalize("NFD", token):
        if char in _DROP or char.isspace() or unicodedata.combining(char):
            continue
        if unicodedata.category(char) == "Lm" and char not in IPA_TO_CLASS:
            continue  # ʰ ʲ ʷ ˠ ˤ: secondary articulations, not a new shape
        kept.append(char)
    return unicodedata.normalize("NFC", "".join(kept))


def classes_of(token: str) -> list[str]:
    """Viseme classes (ARPAbet names) of one IPA token, in order; [] for an empty token."""
    text = normalise(token)
    out: list[str] = []
    index = 0
    while index < len(text):
        pair = text[index : index + 2]
        if len(pair) == 2 and pair in AFFRICATES:
            out.append(AFFRICATES[pair])
            index += 2
            continue
        out.append(IPA_TO_CLASS.get(text[index], UNKNOWN_CLASS))
        index += 1
    return out


def viseme_of(symbol: str) -> tuple[float, float, float]:
    """(opening factor, width, rounding) of one IPA token's first symbol, from VISEMES."""
    classes = classes_of(symbol)
    return VISEMES.get(classes[0] if classes else SILENCE_CLASS, VISEMES_DEFAULT)


def segments_to_phones(segments: list[PhoneSegment]) -> list[Phone]:
    """IPA segments → :class:`Phone` objects named by viseme class (what ``apply_visemes`` takes).

    A token of several symbols shares its time equally among them.  Unknown
    symbols keep a neutral shape; they are logged once per call.
    """
    phones: list[Phone] = []
    unknown: set[str] = set()
    for seg in segments:
        classes = classes_of(seg.name)
        if not classes:
            continue
        if UNKNOWN_CLASS in classes:
            unknown.add(seg.name)
        step = (seg.end_s - seg.start_s) / len(classes)
        for k, name in enumerate(classes):
            phones.append(Phone(name, seg.start_s + k * step, seg.start_s + (k + 1) * step))
    if unknown:
        log.info("ipa_unknown_symbols", symbols=sorted(unknown), shape="neutral")
    return phones
