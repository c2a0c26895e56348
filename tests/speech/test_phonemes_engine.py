"""Phonemes in the mouth curve and the built-in engine: selection order, cache, fallbacks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

from heygem_daemon.engines.base import AudioClip, EngineConfig
from heygem_daemon.engines.builtin import BuiltinEngine
from heygem_daemon.speech import loudness_curve, mouth_curve
from heygem_daemon.speech.ctc import PhoneSegment

from .tiny_wav2vec2 import build_tiny_model

RATE = 16_000
#: what pocketsphinx hears in audio_1.wav (see test_align.py)
HEARD_1 = "armed to honestly be discontinued and need to be replaced by new benchmark rates"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("engine") / "tiny")


@pytest.fixture(scope="module")
def clip(speech_1) -> AudioClip:
    return AudioClip(samples=speech_1[: 4 * RATE], digest="sha256-of-audio-1-first-4s")


def bilabial_every_300ms(samples: np.ndarray) -> list[PhoneSegment]:
    """A stand-in recogniser output (a plain function, no model): "m" then "a", alternating."""
    seconds = len(samples) / RATE
    return [PhoneSegment("m" if k % 2 == 0 else "a", k * 0.15, (k + 1) * 0.15) for k in range(int(seconds / 0.15))]


def test_phonemes_shape_the_loudness_curve(speech_1):
    """With phonemes and no transcript the source is phonemes:wav2vec2 and the lips close on "m"."""
    samples = speech_1[: 3 * RATE]
    plain = loudness_curve(samples, RATE)
    shaped = mouth_curve(samples, RATE, phonemes=bilabial_every_300ms)
    assert "phonemes:wav2vec2" == shaped.source
    m_centres = [int((k * 0.15 + 0.075) * 100) for k in range(0, 20, 2)]
    voiced = [i for i in m_centres if plain.open[i] > 0.2]
    assert voiced, "the clip should be speaking somewhere in its first 3 s"
    assert np.mean(shaped.open[voiced]) < 0.3 * np.mean(plain.open[voiced])


def test_transcript_wins_over_phonemes_and_non_english_falls_through(speech_1):
    """An aligned English transcript comes first; a Chinese transcript falls back to phonemes."""
    assert "transcript" == mouth_curve(speech_1, RATE, transcript=HEARD_1, phonemes=bilabial_every_300ms).source
    assert "phonemes:wav2vec2" == mouth_curve(speech_1, RATE, transcript="你好，世界",
                                             phonemes=bilabial_every_300ms).source


def test_recogniser_failure_falls_back_to_the_next_source(speech_1):
    """A phoneme model that raises at run time is logged and the next source (phones heard by
    pocketsphinx) is used; the job goes on."""
    def broken(samples):
        raise RuntimeError("CUDA out of memory")

    with capture_logs() as logs:
        curve = mouth_curve(speech_1[:RATE], RATE, phonemes=broken)
    assert "phones:pocketsphinx" == curve.source
    assert any(e["event"] == "phonemes_failed" and "out of memory" in e["reason"] for e in logs)


def test_engine_reports_phonemes_and_caches_them(model_dir, clip, tmp_path):
    """The engine loads the configured model once, reports phoneme count and time, and caches by digest."""
    engine = BuiltinEngine(EngineConfig(models={"phonemes": model_dir}, cache_dir=tmp_path))
    first = engine.prepare(clip)
    second = engine.prepare(clip)
    assert "phonemes:wav2vec2" == first.source == second.source
    assert first.details["phonemes"] > 0 and first.details["phonemes_s"] >= 0
    assert (False, True) == (first.details["phonemes_cached"], second.details["phonemes_cached"])
    assert np.array_equal(first.data.open, second.data.open)
    assert 1 == len(list((tmp_path / "phonemes").glob("*.json")))


def test_engine_without_model_uses_the_phone_recogniser(clip):
    """No models.phonemes: the phones pocketsphinx hears drive the mouth; nothing about phonemes is reported."""
    features = BuiltinEngine(EngineConfig()).prepare(clip)
    assert "phones:pocketsphinx" == features.source and "phonemes" not in features.details


def test_broken_model_folder_falls_back_to_the_phone_recogniser(tmp_path, clip):
    """A configured but broken folder is logged at start-up; the engine runs on the default phones."""
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    with capture_logs() as logs:
        engine = BuiltinEngine(EngineConfig(models={"phonemes": folder}))
    assert engine.phonemes is None
    errors = [e for e in logs if e["event"] == "phonemes_unavailable"]
    assert errors and "models.phonemes" in errors[0]["reason"]
    assert "phones:pocketsphinx" == engine.prepare(clip).source
