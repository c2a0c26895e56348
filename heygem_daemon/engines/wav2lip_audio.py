"""Mel features exactly as Wav2Lip was trained on them (its ``audio.py`` + ``hparams.py``).

The network only knows the numbers it saw in training, so every constant here is the
original's: 16 kHz, pre-emphasis 0.97, STFT 800/200/800 with a periodic Hann window,
centred with *reflect* padding (librosa's default when Wav2Lip was written; librosa
≥ 0.10 pads with zeros instead), magnitude (not power) through an 80-band Slaney mel
filterbank 55–7600 Hz, dB minus 20, then clipped to [-4, 4] from a -100 dB floor.
Computed with ``torch.stft``; librosa is only used by the tests to check us.
"""

from __future__ import annotations

import numpy as np
import torch

SAMPLE_RATE = 16_000
N_FFT = 800
HOP = 200
WIN = 800
N_MELS = 80
FMIN = 55.0
FMAX = 7600.0
PREEMPHASIS = 0.97
REF_LEVEL_DB = 20.0
MIN_LEVEL_DB = -100.0
MAX_ABS_VALUE = 4.0
#: mel frames per second of audio (SAMPLE_RATE / HOP)
MEL_FPS = SAMPLE_RATE / HOP
#: mel frames the network sees per video frame (0.2 s)
MEL_WINDOW = 16


def preemphasis(wav: np.ndarray, k: float = PREEMPHASIS) -> np.ndarray:
    """y[n] = x[n] - k·x[n-1] (same as ``scipy.signal.lfilter([1, -k], [1], x)``)."""
    x = np.asarray(wav, dtype=np.float64)
    out = x.copy()
    out[1:] -= k * x[:-1]
    return out


def mel_filterbank(
    sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS, fmin: float = FMIN, fmax: float = FMAX
) -> np.ndarray:
    """Slaney-scale, area-normalised triangles; equals ``librosa.filters.mel`` with its defaults."""
    fft_freqs = np.linspace(0.0, sr / 2.0, 1 + n_fft // 2)
    mel_points = np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2)
    edges = _mel_to_hz(mel_points)
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    # Slaney normalisation: each triangle has unit area, so wide bands are not louder.
    weights *= (2.0 / (edges[2 : n_mels + 2] - edges[:n_mels]))[:, None]
    return weights.astype(np.float32)


# Slaney's mel scale: linear below 1 kHz, logarithmic above.
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def _hz_to_mel(hz: float) -> float:
    if hz < _MIN_LOG_HZ:
        return hz / _F_SP
    return _MIN_LOG_MEL + float(np.log(hz / _MIN_LOG_HZ)) / _LOGSTEP


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    hz = _F_SP * mels
    log_part = mels >= _MIN_LOG_MEL
    hz[log_part] = _MIN_LOG_HZ * np.exp(_LOGSTEP * (mels[log_part] - _MIN_LOG_MEL))
    return hz


def melspectrogram(wav: np.ndarray, mel_basis: np.ndarray | None = None) -> np.ndarray:
    """16 kHz mono samples → (80, T) float32 normalised mel, T = len(wav) // 200 + 1."""
    basis = mel_filterbank() if mel_basis is None else mel_basis
    emphasised = torch.from_numpy(preemphasis(wav))
    if emphasised.numel() <= N_FFT // 2:
        # reflect padding needs more samples than half a window; silence changes nothing
        emphasised = torch.nn.functional.pad(emphasised, (0, N_FFT // 2 + 1 - emphasised.numel()))
    spec = torch.stft(
        emphasised,
        n_fft=N_FFT,
        hop_length=HOP,
        win_length=WIN,
        window=torch.hann_window(WIN, periodic=True, dtype=torch.float64),
        center=True,
        pad_mode="reflect",
        return_complex=True,
    ).abs()
    mel = torch.from_numpy(basis.astype(np.float64)) @ spec
    db = 20.0 * torch.log10(torch.clamp(mel, min=10 ** (MIN_LEVEL_DB / 20))) - REF_LEVEL_DB
    norm = 2 * MAX_ABS_VALUE * ((db - MIN_LEVEL_DB) / -MIN_LEVEL_DB) - MAX_ABS_VALUE
    return torch.clamp(norm, -MAX_ABS_VALUE, MAX_ABS_VALUE).numpy().astype(np.float32)


def mel_windows(mel: np.ndarray, frame_indices: np.ndarray, fps: float) -> np.ndarray:
    """(B, 80, 16) windows: frame i takes ``mel[:, int(80·i/fps) : +16]``.

    Windows that would run past the end are clamped to the last 16 frames (as the
    original inference does); audio shorter than one window is padded with silence (-4).
    """
    if mel.shape[1] < MEL_WINDOW:
        pad = np.full((mel.shape[0], MEL_WINDOW - mel.shape[1]), -MAX_ABS_VALUE, dtype=mel.dtype)
        mel = np.concatenate([mel, pad], axis=1)
    last_start = mel.shape[1] - MEL_WINDOW
    starts = (np.asarray(frame_indices, dtype=np.float64) * (MEL_FPS / fps)).astype(np.int64)
    starts = np.clip(starts, 0, last_start)
    offsets = starts[:, None] + np.arange(MEL_WINDOW)[None, :]
    return np.ascontiguousarray(mel[:, offsets].transpose(1, 0, 2))
