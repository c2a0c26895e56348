"""The IPA → viseme table: English and Mandarin phones, one table of mouth shapes."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from heygem_daemon.speech.ctc import PhoneSegment
from heygem_daemon.speech.ipa import AFFRICATES, IPA_TO_CLASS, classes_of, segments_to_phones, viseme_of
from heygem_daemon.speech.visemes import VISEMES

#: English phones as espeak writes them (General American)
ENGLISH = ("p b m f v θ ð t d n s z ʃ ʒ tʃ dʒ k ɡ ŋ h l ɹ j w "
           "i ɪ eɪ ɛ æ ɑ ʌ ə ɚ ɜː ɔ oʊ ʊ u aɪ aʊ ɔɪ ɾ ʔ ᵻ").split()
#: Mandarin pinyin initials and finals in IPA (aspiration, tones and length included)
MANDARIN = ("p pʰ m f t tʰ n l k kʰ x h tɕ tɕʰ ɕ ʈʂ ʈʂʰ ʂ ʐ ɻ ts tsʰ s "
            "a o ɤ e i u y ɨ ə ai ei au ou ia ie ua uo ye iau iou uai uei "
            "an ən iɛn yɛn aŋ əŋ iŋ uŋ ma˥ ma˧˥ ma˨˩˦ ma˥˩ ma1 a5").split()


def shape(token: str) -> tuple[float, float, float]:
    return viseme_of(token)


@pytest.mark.parametrize("token", ENGLISH + MANDARIN)
def test_every_english_and_mandarin_phone_maps(token):
    """Every English and Mandarin phone maps to known viseme classes (no neutral fallback)."""
    classes = classes_of(token)
    assert classes and all(c in VISEMES for c in classes), (token, classes)


@pytest.mark.parametrize("token", ["p", "b", "m", "pʰ", "ˈm", "bː", "m̩"])
def test_closures_are_closed(token):
    """Bilabials, aspirated or stressed or long, close the lips (opening factor 0)."""
    assert 0.0 == shape(token)[0]


def test_rounding_spreading_and_open_vowels():
    """Rounded phones round, spread phones spread, open vowels open widest, f/v nearly close."""
    for token in ("u", "o", "ɔ", "w", "y", "ʊ"):
        assert shape(token)[2] >= 0.8, token
    for token in ("i", "e", "ɛ", "ɪ", "j"):
        assert shape(token)[1] >= 0.5 and shape(token)[2] == 0.0, token
    for token in ("a", "ɑ", "æ", "ʌ", "ɐ"):
        assert shape(token)[0] >= 0.85, token
    for token in ("f", "v"):
        assert shape(token)[0] <= 0.2, token


def test_marks_are_stripped_and_affricates_stay_one_phone():
    """Stress, length, tones and aspiration vanish; affricates are one phone, diphthongs split."""
    assert ["P"] == classes_of("ˈpʰː")
    assert ["CH"] == classes_of("ʈʂʰ")
    assert ["S"] == classes_of("tsʰ")
    assert ["AA", "IH"] == classes_of("aɪ˥˩")
    assert ["IY", "AA", "UH"] == classes_of("iaʊ")
    assert [] == classes_of("ˈ˥")


def test_one_table_of_shapes():
    """The IPA table only names ARPAbet classes that visemes.VISEMES defines (no second set of numbers)."""
    assert set(IPA_TO_CLASS.values()) | set(AFFRICATES.values()) <= set(VISEMES)
    assert VISEMES["M"] == shape("m") and VISEMES["UW"] == shape("u")


def test_segments_become_phones_and_unknown_symbols_are_logged_once():
    """Diphthongs share their time; unknown symbols keep a neutral shape and are logged once."""
    segments = [PhoneSegment("aɪ", 0.0, 0.2), PhoneSegment("ʘ", 0.2, 0.3), PhoneSegment("ʘ", 0.3, 0.4),
                PhoneSegment("|", 0.4, 0.5)]
    with capture_logs() as logs:
        phones = segments_to_phones(segments)
    assert [("AA", 0.0, 0.1), ("IH", 0.1, 0.2)] == [(p.name, p.start_s, round(p.end_s, 6)) for p in phones[:2]]
    assert 4 == len(phones)
    unknown = [e for e in logs if e["event"] == "ipa_unknown_symbols"]
    assert 1 == len(unknown) and ["ʘ"] == unknown[0]["symbols"]
