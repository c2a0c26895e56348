"""Transcript alignment with pocketsphinx → visemes, and the fallback to loudness."""

from __future__ import annotations

import numpy as np
import pytest
from structlog.testing import capture_logs

from heygem_daemon.speech import loudness_curve, mouth_curve
from heygem_daemon.speech.align import align_phones, transcript_words

RATE = 16_000
#: what pocketsphinx's own recogniser hears in audio_1.wav (we cannot listen to it);
#: good enough as a transcript to show that alignment produces timed visemes
HEARD_1 = "armed to honestly be discontinued and need to be replaced by new benchmark rates"


@pytest.fixture(scope="module")
def phones(speech_1):
    return align_phones(speech_1, RATE, HEARD_1)


def test_alignment_times_the_phones(phones, speech_1):
    """Every word's phones come back in order, inside the audio, with bilabials present."""
    names = [p.name for p in phones]
    assert {"B", "M", "P"} <= set(names)
    starts = [p.start_s for p in phones]
    assert starts == sorted(starts)
    assert phones[-1].end_s <= len(speech_1) / RATE + 0.02


def test_transcript_curve_closes_lips_on_bilabials(phones, speech_1):
    """With a transcript the mouth is much more closed on m/b/p than loudness alone has it."""
    plain = loudness_curve(speech_1, RATE)
    # no lead here: the phones' own times are compared (the lead is tested on its own)
    shaped = mouth_curve(speech_1, RATE, transcript=HEARD_1, lead_s=0.0)
    assert shaped.source == "transcript"
    centres = [int((p.start_s + p.end_s) / 2 * 100) for p in phones if p.name in ("B", "M", "P")]
    assert np.mean(shaped.open[centres]) < 0.5 * np.mean(plain.open[centres]) + 0.02
    assert shaped.round.max() > 0.3 and shaped.width.max() > 0.3


def test_non_english_transcript_falls_back_to_the_phone_recogniser(speech_1):
    """A transcript with no English words (e.g. Chinese) is logged and the phones heard in the audio are used."""
    with capture_logs() as logs:
        curve = mouth_curve(speech_1, RATE, transcript="你好，世界")
    assert curve.source == "phones:pocketsphinx"
    assert any(entry["event"] == "alignment_failed" for entry in logs)


def test_unalignable_transcript_falls_back(speech_1):
    """Words that are not in the audio at all fail to align and fall back, never raise."""
    curve = mouth_curve(speech_1[: RATE], RATE, transcript="zorgblat quuxify the flibbertigibbet " * 4)
    assert curve.source in ("phones:pocketsphinx", "transcript")
    assert len(curve.open) == 100


def test_transcript_words_normalise_text():
    """Punctuation, case and curly apostrophes are normalised; digits dropped."""
    assert transcript_words("Hello, World! It\u2019s 42.") == ["hello", "world", "it's"]
