"""Wav2Lip mel features against librosa, and the per-frame mel windows."""

from __future__ import annotations


import numpy as np
import pytest

from heygem_daemon.engines import wav2lip_audio as w2a

from tests.support.media import sample_media

librosa = pytest.importorskip("librosa", reason="librosa (a test dependency) checks the mel features")
signal = pytest.importorskip("scipy.signal", reason="scipy (librosa's dependency) gives the reference pre-emphasis")


def _speech() -> np.ndarray:
    path = sample_media("audio_1.wav")
    samples, _ = librosa.load(path, sr=16_000, mono=True)
    return samples.astype(np.float32)


def _reference_mel(wav: np.ndarray) -> np.ndarray:
    """Wav2Lip's audio.py, written out with librosa (reflect padding as in librosa 0.7)."""
    stft = librosa.stft(
        y=signal.lfilter([1, -0.97], [1], wav), n_fft=800, hop_length=200, win_length=800, pad_mode="reflect"
    )
    basis = librosa.filters.mel(sr=16_000, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    db = 20 * np.log10(np.maximum(1e-5, basis @ np.abs(stft))) - 20
    return np.clip(2 * 4 * ((db + 100) / 100) - 4, -4, 4)


def test_filterbank_matches_librosa() -> None:
    """Our Slaney filterbank equals librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, 55–7600 Hz)."""
    expected = librosa.filters.mel(sr=16_000, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    np.testing.assert_allclose(w2a.mel_filterbank(), expected, atol=1e-7)


def test_melspectrogram_matches_librosa_on_speech() -> None:
    """Normalised mel of real speech equals the librosa reference within 1e-3."""
    wav = _speech()
    actual = w2a.melspectrogram(wav)
    expected = _reference_mel(wav)
    assert actual.shape == expected.shape == (80, len(wav) // 200 + 1)
    assert actual.dtype == np.float32
    np.testing.assert_allclose(actual, expected, atol=1e-3)
    assert actual.min() >= -4 and actual.max() <= 4


def test_preemphasis_equals_lfilter() -> None:
    """Pre-emphasis equals scipy.signal.lfilter([1, -0.97], [1], x)."""
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    np.testing.assert_allclose(w2a.preemphasis(x), signal.lfilter([1, -0.97], [1], x), atol=1e-6)


def test_mel_window_for_frame_i() -> None:
    """Frame i takes mel[:, int(i·80/fps) : +16], as the original inference does."""
    mel = np.arange(80 * 400, dtype=np.float32).reshape(80, 400)
    fps = 25.0
    indices = np.array([0, 1, 7, 50])
    windows = w2a.mel_windows(mel, indices, fps)
    assert windows.shape == (4, 80, 16)
    for row, i in enumerate(indices):
        start = int(i * (80.0 / fps))
        np.testing.assert_array_equal(windows[row], mel[:, start : start + 16])


def test_last_window_clamped_to_end() -> None:
    """A window that would run past the audio is the last 16 mel frames."""
    mel = np.random.default_rng(1).standard_normal((80, 100)).astype(np.float32)
    windows = w2a.mel_windows(mel, np.array([31, 32, 1000]), 30.0)  # starts 82, 85, 2666
    np.testing.assert_array_equal(windows[0], mel[:, 82:98])
    np.testing.assert_array_equal(windows[1], mel[:, 84:])
    np.testing.assert_array_equal(windows[2], mel[:, 84:])


def test_audio_shorter_than_one_window_is_padded_with_silence() -> None:
    """Under 0.2 s of audio still gives full windows, padded with the silence value -4."""
    mel = w2a.melspectrogram(np.zeros(1000, dtype=np.float32))
    windows = w2a.mel_windows(mel, np.array([0, 3]), 25.0)
    assert windows.shape == (2, 80, 16)
    assert np.all(windows == -4.0)
