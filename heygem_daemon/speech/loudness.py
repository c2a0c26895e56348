"""Mouth parameters from the sound alone, for any language.

Opening follows the speech-band loudness (300-3400 Hz, where voice energy and
intelligibility live) inside voiced segments and is zero in silences.  Voice
activity uses an adaptive noise floor with hysteresis and a short hangover so
word endings are not clipped.  Width and rounding come from the spectral
centroid of the speech band, a stand-in for the second formant: low F2 means
rounded lips (o, u), high F2 spread lips (i, e).  Every filter is centred,
so the curve has no lag against the audio.
"""

from __future__ import annotations

import numpy as np

from .curve import MouthCurve
from .dsp import HOP_S, band_spectra, gaussian_smooth, running_max, running_min

BAND_HZ = (300.0, 3400.0)
#: hangover after the level drops (keeps word endings), minimum voiced run (drops clicks)
HANGOVER_S = 0.08
MIN_VOICED_S = 0.04
#: the noise floor is tracked over this window (adapts to slowly changing noise)
FLOOR_WINDOW_S = 2.0
#: smoothing of the opening (sigma): keeps syllables and onsets (+-20 ms), removes pitch flutter
OPEN_SIGMA_S = 0.012
SHAPE_SIGMA_S = 0.05
_EPS = 1e-10


def loudness_curve(samples: np.ndarray, rate: int) -> MouthCurve:
    """Opening, width and rounding every 10 ms from a mono float signal."""
    power, freqs = band_spectra(samples, rate, *BAND_HZ)
    if len(power) == 0:
        empty = np.zeros(0, dtype=np.float32)
        return MouthCurve(1.0 / HOP_S, empty, empty, empty, "loudness", np.zeros(0, dtype=bool))
    level_db = 10.0 * np.log10(power.sum(axis=1) + _EPS)
    floor, peak = _floor_and_peak(level_db)
    voiced = voice_activity(level_db, floor, peak)
    opening = _opening(level_db, voiced, floor, peak)
    width, rounding = _lip_shape(power, freqs, voiced, opening)
    return MouthCurve(
        rate_hz=1.0 / HOP_S,
        open=opening.astype(np.float32),
        width=width.astype(np.float32),
        round=rounding.astype(np.float32),
        source="loudness",
        voiced=voiced,
    )


def _floor_and_peak(level_db: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-frame noise floor (running minimum, opened) and the speech peak level."""
    frames = max(3, int(FLOOR_WINDOW_S / HOP_S))
    floor = running_max(running_min(level_db, frames), frames)
    # Digital silence would put the floor at -100 dB; speech 40 dB below the
    # peak is inaudible next to it, so the floor never goes lower than that.
    peak = float(np.percentile(level_db, 97))
    floor = np.maximum(floor, peak - 45.0)
    return floor, peak


def voice_activity(level_db: np.ndarray, floor: np.ndarray, peak: float) -> np.ndarray:
    """Hysteresis on the level above the floor, with hangover and minimum run length."""
    span = np.maximum(peak - floor, 1.0)
    on = floor + np.maximum(6.0, 0.45 * span)
    off = floor + np.maximum(4.0, 0.35 * span)
    hang = int(round(HANGOVER_S / HOP_S))
    voiced = np.zeros(len(level_db), dtype=bool)
    active, left = False, 0
    for i, level in enumerate(level_db):
        if level >= on[i] or (active and level >= off[i]):
            active, left = True, hang
        elif active and left > 0:
            left -= 1
        else:
            active = False
        voiced[i] = active
    return _drop_short_runs(voiced, int(round(MIN_VOICED_S / HOP_S)))


def _drop_short_runs(mask: np.ndarray, min_len: int) -> np.ndarray:
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    out = mask.copy()
    for start, stop in zip(edges[0::2], edges[1::2]):
        if stop - start < min_len:
            out[start:stop] = False
    return out


def _opening(level_db: np.ndarray, voiced: np.ndarray, floor: np.ndarray, peak: float) -> np.ndarray:
    """Level mapped linearly in dB from just above the floor (0) to the speech peak (1)."""
    bottom = floor + np.maximum(4.0, 0.35 * np.maximum(peak - floor, 1.0))
    raw = np.clip((level_db - bottom) / np.maximum(peak - bottom, 1.0), 0.0, 1.0)
    raw = np.where(voiced, raw, 0.0)
    return np.clip(gaussian_smooth(raw, OPEN_SIGMA_S / HOP_S), 0.0, 1.0)


def _lip_shape(
    power: np.ndarray, freqs: np.ndarray, voiced: np.ndarray, opening: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Width in [-1, 1] and rounding in [0, 1] from the speech-band spectral centroid."""
    centroid = (power * freqs).sum(axis=1) / (power.sum(axis=1) + _EPS)
    if voiced.sum() < 3:
        zeros = np.zeros(len(power))
        return zeros, zeros
    ref = np.median(centroid[voiced])
    scale = max(float(np.subtract(*np.percentile(centroid[voiced], [75, 25]))), 50.0)
    z = np.where(voiced, (centroid - ref) / scale, 0.0)
    # Shapes only matter while the mouth is open; weight them by the opening.
    weight = np.clip(opening * 2.0, 0.0, 1.0)
    width = gaussian_smooth(np.tanh(z) * weight, SHAPE_SIGMA_S / HOP_S)
    rounding = gaussian_smooth(np.clip(-np.tanh(z), 0.0, 1.0) * weight, SHAPE_SIGMA_S / HOP_S)
    return np.clip(width, -1.0, 1.0), np.clip(rounding, 0.0, 1.0)
