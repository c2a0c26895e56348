"""The acoustic mouth regressor: shipped weights, fitting, and the rules it may not break."""

from __future__ import annotations

import numpy as np

from heygem_daemon.speech import mouth_curve
from heygem_daemon.speech.acoustic import AcousticModel, fit, frame_features, lagged, shipped_model
from heygem_daemon.speech.phones import recognize_phones

RATE = 16_000


def test_the_package_ships_fitted_weights_with_their_provenance():
    """183 weights (14 features x 13 lags + bias) fitted on real speakers' footage, named in the file."""
    model = shipped_model()
    assert model is not None
    assert model.weights.shape == (14 * 13 + 1,)
    assert np.isfinite(model.weights).all()
    assert "dlib" in model.provenance and "talk_en_40s.mp4" in model.provenance


def test_prediction_covers_the_audio_every_10_ms(speech_1):
    """One z-scored opening per 10 ms of audio, finite, varying with the speech."""
    z = shipped_model().predict(speech_1, RATE)
    assert len(z) == int(np.ceil(len(speech_1) / 160))
    assert np.isfinite(z).all() and z.std() > 0.1


def test_fit_recovers_a_relation_that_is_in_the_features(speech_1, tmp_path):
    """A target built from the features is learned back (r > 0.95), and survives save/load."""
    frames = frame_features(speech_1, RATE)
    times = np.arange(0, len(speech_1) / RATE, 0.04)
    x = lagged(frames, times)
    target = 0.03 + 0.01 * (x[:, 14 * 6] - 0.5 * x[:, 14 * 6 + 13])  # cepstrum 0 and level at lag 0
    model = fit([x], [target], ridge=1.0)
    assert np.corrcoef(x @ model.weights[:-1], target)[0, 1] > 0.95
    model.save(tmp_path / "m.npz")
    np.testing.assert_allclose(AcousticModel.load(tmp_path / "m.npz").weights, model.weights)


def test_the_blend_keeps_silence_shut_and_lips_closed_on_bilabials(speech_1):
    """Blending the spectrum's opinion in never opens a silent mouth, and m/b/p still close."""
    model = shipped_model()
    silence = np.zeros(RATE, dtype=np.float32)
    padded = np.concatenate([silence, speech_1, silence])
    curve = mouth_curve(padded, RATE, acoustic=model, lead_s=0.0)
    assert float(curve.open[:90].max()) == 0.0 and float(curve.open[-90:].max()) == 0.0
    plain = mouth_curve(padded, RATE, recognise_phones=False, lead_s=0.0)
    phones = recognize_phones(padded, RATE)
    centres = [int((p.start_s + p.end_s) / 2 * 100) for p in phones if p.name in ("M", "B", "P")]
    voiced = [i for i in centres if plain.open[i] > 0.1]
    assert voiced
    assert np.mean(curve.open[voiced]) < 0.5 * np.mean(plain.open[voiced])
