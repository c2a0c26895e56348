"""Small numpy signal helpers shared by the speech analysers (no scipy needed)."""

from __future__ import annotations

import numpy as np

#: analysis hop (10 ms at 16 kHz) and window (16 ms: short, so a word onset
#: shows within ~10 ms; still 62 Hz resolution for the band and centroid)
HOP_S = 0.010
WINDOW_S = 0.016
#: frames per STFT chunk: bounds memory on hour-long audio
_CHUNK = 4096


def band_spectra(samples: np.ndarray, rate: int, lo_hz: float, hi_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Centred STFT power in [lo_hz, hi_hz]: (frames, bins) and the bins' frequencies.

    Frame i is centred at t = i * HOP_S, so curves derived from it need no
    delay correction.
    """
    hop = int(round(HOP_S * rate))
    n_fft = int(2 ** np.floor(np.log2(WINDOW_S * rate)))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / rate)
    keep = (freqs >= lo_hz) & (freqs <= hi_hz)
    count = int(np.ceil(len(samples) / hop)) if len(samples) else 0
    padded = np.pad(samples.astype(np.float32), (n_fft // 2, n_fft))
    window = np.hanning(n_fft).astype(np.float32)
    out = np.empty((count, int(keep.sum())), dtype=np.float32)
    for start in range(0, count, _CHUNK):
        stop = min(count, start + _CHUNK)
        idx = np.arange(start, stop)[:, None] * hop + np.arange(n_fft)[None, :]
        spec = np.fft.rfft(padded[idx] * window, axis=1)[:, keep]
        out[start:stop] = (spec.real**2 + spec.imag**2) / n_fft
    return out, freqs[keep]


def gaussian_smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """Zero-phase Gaussian smoothing (edge-renormalised): no lag, no end bias."""
    if sigma <= 0 or len(values) < 2:
        return values.astype(np.float64)
    radius = int(np.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    num = np.convolve(values.astype(np.float64), taps, mode="same")
    den = np.convolve(np.ones(len(values)), taps, mode="same")
    return num / den


def running_min(values: np.ndarray, width: int) -> np.ndarray:
    """Centred minimum over ``width`` samples (edges use what exists)."""
    half = max(1, width // 2)
    padded = np.pad(values, half, mode="edge")
    view = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    return view.min(axis=1)


def running_max(values: np.ndarray, width: int) -> np.ndarray:
    return -running_min(-values, width)
