"""Loudness-driven mouth curve: closed in silences, timed to the speech, language independent."""

from __future__ import annotations

import numpy as np

from heygem_daemon.speech import loudness_curve
from heygem_daemon.speech.curve import MouthCurve

RATE = 16_000


def _loud_start(samples: np.ndarray) -> int:
    """A sample index where audio_1 is in the middle of loud speech (chunks start with sound)."""
    curve = loudness_curve(samples, RATE)
    index = int(np.argmax(curve.open[50:250])) + 50
    return index * RATE // 100


def _speech_and_silence(samples: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """1 s speech / 1 s zeros / 1 s speech / 1 s zeros; returns signal and speech onsets (s)."""
    start = _loud_start(samples)
    chunk_a = samples[start : start + RATE]
    chunk_b = samples[start + RATE // 2 : start + RATE // 2 + RATE]
    zeros = np.zeros(RATE, dtype=np.float32)
    return np.concatenate([chunk_a, zeros, chunk_b, zeros]), [0.0, 2.0]


def test_mouth_is_closed_in_silences(speech_1):
    """Opening is ~0 in digital silence (after the 80 ms hangover and smoothing), open in speech."""
    signal, _ = _speech_and_silence(speech_1)
    curve = loudness_curve(signal, RATE)
    times = curve.times()
    for lo, hi in ((1.15, 1.98), (3.15, 4.0)):
        quiet = (times >= lo) & (times < hi)
        assert curve.open[quiet].max() < 0.02
        assert not curve.voiced[quiet].any()
    assert curve.open[(times > 0.05) & (times < 0.95)].mean() > 0.3


def test_onset_is_within_20_ms(speech_1):
    """After a silence the mouth starts opening within +-20 ms of the speech onset."""
    signal, onsets = _speech_and_silence(speech_1)
    curve = loudness_curve(signal, RATE)
    times = curve.times()
    after = (times >= 1.5) & (curve.open > 0.1)
    first = times[np.flatnonzero(after)[0]]
    assert abs(first - onsets[1]) <= 0.020


def test_offset_closes_promptly(speech_1):
    """The mouth is closed again within 150 ms after speech stops (hangover + smoothing)."""
    signal, _ = _speech_and_silence(speech_1)
    curve = loudness_curve(signal, RATE)
    times = curve.times()
    assert curve.open[(times >= 1.15) & (times < 1.2)].max() < 0.02


def test_level_independent(speech_1):
    """A quieter recording (-20 dB) animates the same: the curve is normalised to the speech."""
    loud = loudness_curve(speech_1, RATE)
    quiet = loudness_curve(speech_1 * 0.1, RATE)
    assert np.abs(loud.open - quiet.open).max() < 0.05


def _tonal_syllables(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic Mandarin-like speech: voiced syllables with rising/falling pitch (tones), gaps between."""
    rng = np.random.default_rng(seed)
    pieces, mask = [], []
    for i in range(12):
        dur = rng.uniform(0.15, 0.3)
        t = np.arange(int(dur * RATE)) / RATE
        tone = i % 4
        f0 = {0: 220 + 0 * t, 1: 180 + 300 * t, 2: 260 - 250 * t, 3: 200 - 120 * t + 300 * t**2}[tone]
        phase = 2 * np.pi * np.cumsum(f0) / RATE
        voice = sum(np.sin(k * phase) / k for k in range(1, 15))
        envelope = np.sin(np.pi * t / dur) ** 0.5
        pieces.append(0.2 * voice * envelope)
        mask.append(np.ones(len(t), dtype=bool))
        gap = int(rng.uniform(0.12, 0.25) * RATE)
        pieces.append(0.0005 * rng.standard_normal(gap))
        mask.append(np.zeros(gap, dtype=bool))
    return np.concatenate(pieces).astype(np.float32), np.concatenate(mask)


def test_tonal_language_without_transcript_animates():
    """Tonal (Mandarin-like) syllables open the mouth per syllable and close it between them."""
    signal, mask = _tonal_syllables()
    curve = loudness_curve(signal, RATE)
    syllable = mask[(np.arange(len(curve.open)) * RATE // 100).clip(max=len(mask) - 1)]
    assert np.corrcoef(curve.open, syllable.astype(float))[0, 1] > 0.7
    assert curve.open[syllable].mean() > 5 * curve.open[~syllable].mean()


def test_shape_parameters_stay_in_range(speech_1):
    """Width is in [-1, 1], rounding in [0, 1], both zero in silence, and they vary in speech."""
    curve = loudness_curve(speech_1, RATE)
    assert -1 <= curve.width.min() and curve.width.max() <= 1
    assert 0 <= curve.round.min() and curve.round.max() <= 1
    assert curve.width.std() > 0.05
    silent = loudness_curve(np.zeros(RATE, dtype=np.float32), RATE)
    assert np.all(silent.open == 0) and np.all(silent.width == 0)


def test_curve_sampling_interpolates_and_closes_outside():
    """MouthCurve.at interpolates between samples and is closed beyond the audio."""
    curve = MouthCurve(100.0, np.array([0.0, 1.0, 0.0]), np.zeros(3), np.zeros(3))
    shape = curve.at(np.array([0.005, 0.01, 0.5]))
    np.testing.assert_allclose(shape.open, [0.5, 1.0, 0.0])
