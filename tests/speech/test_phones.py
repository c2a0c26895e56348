"""The default speech stage: phones heard by pocketsphinx, visemes, and the mouth's lead."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from heygem_daemon.media.audio import decode_audio
from heygem_daemon.settings import LimitSettings
from heygem_daemon.speech import mouth_curve
from heygem_daemon.speech.mouth import LEAD_S
from heygem_daemon.speech.phones import open_decoder, recognize_phones, reset_decoder
from tests.support.media import sample_media

RATE = 16_000
ASSETS = Path(__file__).resolve().parents[1] / "assets"


def test_phones_are_heard_without_a_transcript(speech_1):
    """Real English speech gives timed phones: vowels, lip closures and pauses, in order, inside the audio."""
    phones = recognize_phones(speech_1, RATE)
    names = {p.name for p in phones}
    assert names & {"AA", "AE", "AH", "EH", "IY", "IH", "AY", "OW"}
    assert names & {"M", "B", "P"}
    assert "SIL" in names
    starts = [p.start_s for p in phones]
    assert starts == sorted(starts)
    assert phones[-1].end_s <= len(speech_1) / RATE + 0.02


def test_a_reset_decoder_hears_each_audio_as_a_fresh_one_does():
    """One decoder reset between audios gives each the phones of its own fresh decoder; left as it
    was, the cepstral mean of the audio before changes what it hears."""
    clips = [decode_audio(sample_media(name), LimitSettings()).samples
             for name in ("audio_1.wav", "audio_2.wav", "talk_de_20s.mp4")]
    fresh = [recognize_phones(clip, RATE, decoder=open_decoder()) for clip in clips]
    reused, carried = open_decoder(), open_decoder()
    heard_reset, heard_carried = [], []
    for clip in clips + clips:
        heard_reset.append(recognize_phones(clip, RATE, decoder=reused))
        reset_decoder(reused)
        heard_carried.append(recognize_phones(clip, RATE, decoder=carried))
    assert heard_reset == fresh + fresh
    assert heard_carried != fresh + fresh


def test_long_audio_is_decoded_in_windows_with_true_times(speech_1):
    """Past the 30 s window, phones keep their place on the audio's own clock, and the
    mouth rests through the silence whatever the recogniser makes of it."""
    gap = np.zeros(31 * RATE, dtype=np.float32)
    long = np.concatenate([gap, speech_1])
    phones = recognize_phones(long, RATE)
    starts = [p.start_s for p in phones]
    assert starts == sorted(starts)
    assert any(p.name != "SIL" and p.start_s >= 31.0 for p in phones)
    assert phones[-1].end_s <= len(long) / RATE + 0.02
    curve = mouth_curve(long, RATE)
    assert float(curve.open[: 3000].max()) == 0.0
    assert float(curve.open[3100:].max()) > 0.3


def test_default_source_is_the_phone_recogniser(speech_1):
    """With no transcript and no phoneme model the curve comes from the phones pocketsphinx hears."""
    assert "phones:pocketsphinx" == mouth_curve(speech_1, RATE).source
    assert "loudness" == mouth_curve(speech_1, RATE, recognise_phones=False).source


def test_silence_stays_closed_and_skips_recognition():
    """Digital silence gives a closed mouth from loudness alone (nothing to recognise)."""
    curve = mouth_curve(np.zeros(2 * RATE, dtype=np.float32), RATE)
    assert "loudness" == curve.source
    assert float(np.max(curve.open)) == 0.0


def test_the_mouth_leads_the_sound(speech_1):
    """The finished curve is the unadvanced one moved LEAD_S earlier (real mouths open before the vowel is heard)."""
    plain = mouth_curve(speech_1, RATE, lead_s=0.0)
    led = mouth_curve(speech_1, RATE)
    shift = int(round(LEAD_S * plain.rate_hz))
    assert shift > 0
    np.testing.assert_array_equal(led.open[: len(led.open) - shift], plain.open[shift:])
    assert np.all(led.open[len(led.open) - shift:] == 0.0)


def test_consonants_open_less_than_loudness_alone_would(speech_1):
    """Loudness only modulates: on closures the phonetic curve is far more closed than the loudness curve."""
    phones = recognize_phones(speech_1, RATE)
    loud = mouth_curve(speech_1, RATE, recognise_phones=False, lead_s=0.0)
    phonetic = mouth_curve(speech_1, RATE, lead_s=0.0)
    centres = [int((p.start_s + p.end_s) / 2 * 100) for p in phones if p.name in ("M", "B", "P")]
    voiced = [i for i in centres if loud.open[i] > 0.1]
    assert voiced
    assert np.mean(phonetic.open[voiced]) < 0.5 * np.mean(loud.open[voiced])


@pytest.fixture(scope="module")
def mandarin() -> np.ndarray:
    """Synthesised Mandarin (espeak-ng, voice cmn; see tests/assets/README.md): three phrases with pauses."""
    librosa = pytest.importorskip("librosa")
    samples, _ = librosa.load(str(ASSETS / "mandarin_espeak.wav"), sr=RATE, mono=True)
    return samples.astype(np.float32)


def test_mandarin_closes_in_pauses_and_opens_on_syllables(mandarin):
    """Non-English speech still animates: the English phone model hears vowels, closures and pauses in
    Mandarin, so the mouth is shut in the pauses and open on the syllables."""
    curve = mouth_curve(mandarin, RATE)
    assert "phones:pocketsphinx" == curve.source
    loud = mouth_curve(mandarin, RATE, recognise_phones=False)
    pauses = ~loud.voiced
    syllables = loud.voiced & (loud.open > 0.3)
    assert pauses.sum() > 50 and syllables.sum() > 50
    assert float(np.mean(curve.open[pauses])) < 0.05
    assert float(np.mean(curve.open[syllables])) > 0.25
    assert float(np.percentile(curve.open[syllables], 90)) > 4 * float(np.mean(curve.open[pauses]) + 0.01)
