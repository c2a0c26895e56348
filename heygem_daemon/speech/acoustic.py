"""A second opinion on how open the mouth is: a linear model over the sound's spectrum.

The phone recogniser says *which* sound it heard, and is often wrong in
detail; the spectrum around each instant (13 mel-cepstral coefficients and the
level, over ±240 ms) carries what a recogniser throws away, such as how open
a vowel sounds.  A ridge regression from those 182 numbers to the real mouth
opening, fitted on real speakers' footage (``benchmarks/train_acoustic.py``,
dlib-measured openings of the shared clips), predicts a z-scored opening.  The
speech stage blends it with the phonetic curve (``visemes.py``): measured
leave-one-clip-out, the blend follows real mouths better than either alone
(``docs/lipsync-truth.md``).

The weights are 183 numbers shipped with the package (``assets/mouth_regressor.npz``,
with their provenance); nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np

from .dsp import HOP_S, gaussian_smooth

N_FFT = 512
WINDOW = 400
N_MELS = 26
N_CEPS = 13
#: context: the spectrum this far either side of an instant, in 40 ms steps
LAGS_S = np.round(np.arange(-0.24, 0.2401, 0.04), 3)
RIDGE = 1000.0
_EPS = 1e-10
ASSET = "mouth_regressor.npz"
#: frames predicted at a time (bounds memory on hour-long audio)
_BLOCK = 20_000


@dataclass(frozen=True)
class AcousticModel:
    """Ridge weights over the lagged, per-audio standardised features (+ a bias, last)."""

    weights: np.ndarray
    #: where the weights came from (clips, date), for doctor and the docs
    provenance: str = ""

    def predict(self, samples: np.ndarray, rate: int) -> np.ndarray:
        """Predicted opening (z-score) every ``HOP_S`` seconds, the first at t = 0."""
        frames = frame_features(samples, rate)
        if len(frames) == 0:
            return np.zeros(0)
        times = np.arange(len(frames)) * HOP_S
        out = np.empty(len(frames))
        # in blocks: the lagged design is 182 numbers a frame (1 GB for two hours at once)
        for start in range(0, len(frames), _BLOCK):
            block = times[start : start + _BLOCK]
            out[start : start + len(block)] = lagged(frames, block) @ self.weights[:-1] + self.weights[-1]
        return out

    def save(self, path) -> None:
        np.savez(path, weights=self.weights, provenance=np.array(self.provenance), lags_s=LAGS_S)

    @classmethod
    def load(cls, path) -> "AcousticModel":
        with np.load(path, allow_pickle=False) as data:
            if not np.allclose(data["lags_s"], LAGS_S):
                raise ValueError("the regressor was fitted with other feature lags")
            return cls(weights=data["weights"].astype(np.float64), provenance=str(data["provenance"]))


def shipped_model() -> AcousticModel | None:
    """The model that ships in ``heygem_daemon/assets``, or None when absent or unreadable."""
    try:
        with resources.as_file(resources.files("heygem_daemon") / "assets" / ASSET) as path:
            return AcousticModel.load(path) if path.is_file() else None
    except (OSError, ValueError, KeyError):
        return None


def fit(designs: list[np.ndarray], targets: list[np.ndarray], ridge: float = RIDGE,
        provenance: str = "") -> AcousticModel:
    """Ridge regression of z-scored openings (one per clip) on their lagged features."""
    x = np.concatenate([np.c_[d, np.ones(len(d))] for d in designs])
    y = np.concatenate([(t - t.mean()) / max(t.std(), _EPS) for t in targets])
    penalty = ridge * np.eye(x.shape[1])
    penalty[-1, -1] = 0.0
    return AcousticModel(np.linalg.solve(x.T @ x + penalty, x.T @ y), provenance)


def frame_features(samples: np.ndarray, rate: int) -> np.ndarray:
    """(frames, 14): 13 mel-cepstral coefficients and the log level every 10 ms, standardised per audio."""
    hop = int(round(HOP_S * rate))
    count = int(np.ceil(len(samples) / hop)) if len(samples) else 0
    if count == 0:
        return np.zeros((0, N_CEPS + 1))
    padded = np.pad(samples.astype(np.float32), (N_FFT // 2, N_FFT))
    window = np.hanning(WINDOW).astype(np.float32)
    window = np.pad(window, ((N_FFT - WINDOW) // 2, N_FFT - WINDOW - (N_FFT - WINDOW) // 2))
    mel = _mel_bank(rate)
    dct = _dct_matrix()
    out = np.empty((count, N_CEPS + 1))
    for start in range(0, count, 4096):  # chunks bound memory on hour-long audio
        stop = min(count, start + 4096)
        idx = np.arange(start, stop)[:, None] * hop + np.arange(N_FFT)[None, :]
        frames = padded[idx] * window
        power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
        out[start:stop, :N_CEPS] = np.log(power @ mel.T + _EPS) @ dct.T
        out[start:stop, N_CEPS] = np.log(np.mean(frames**2, axis=1) + 1e-10)
    return (out - out.mean(axis=0)) / (out.std(axis=0) + 1e-6)


def lagged(frames: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Features at ``times + lag`` for every lag, side by side: (len(times), 14 x lags)."""
    grid = np.arange(len(frames)) * HOP_S
    columns = [np.interp(times + lag, grid, frames[:, j]) for lag in LAGS_S for j in range(frames.shape[1])]
    return np.stack(columns, axis=1)


def blend(phonetic: np.ndarray, acoustic_z: np.ndarray, share: float) -> np.ndarray:
    """``share`` of the acoustic opinion mixed into the phonetic curve, on the phonetic curve's scale."""
    n = min(len(phonetic), len(acoustic_z))
    p = phonetic[:n].astype(np.float64)
    spread = max(float(p.std()), _EPS)
    z_p = (p - p.mean()) / spread
    a = gaussian_smooth(acoustic_z[:n], 1.0)
    mixed = (1.0 - share) * z_p + share * (a - a.mean()) / max(float(a.std()), _EPS)
    mixed = mixed / max(float(mixed.std()), _EPS)
    out = np.zeros(len(phonetic))
    out[:n] = np.clip(p.mean() + spread * mixed, 0.0, 1.0)
    return out


def _mel_bank(rate: int) -> np.ndarray:
    """Triangular filters equally spaced on the mel scale (HTK formula), 0 Hz to Nyquist."""
    def to_mel(hz):
        return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)

    def to_hz(mel):
        return 700.0 * (10.0 ** (np.asarray(mel) / 2595.0) - 1.0)

    edges = to_hz(np.linspace(0.0, to_mel(rate / 2.0), N_MELS + 2))
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / rate)
    lower = (freqs[None, :] - edges[:-2, None]) / np.maximum(edges[1:-1, None] - edges[:-2, None], _EPS)
    upper = (edges[2:, None] - freqs[None, :]) / np.maximum(edges[2:, None] - edges[1:-1, None], _EPS)
    return np.maximum(0.0, np.minimum(lower, upper))


def _dct_matrix() -> np.ndarray:
    """Orthonormal DCT-II rows for the first N_CEPS coefficients."""
    k = np.arange(N_CEPS)[:, None]
    n = np.arange(N_MELS)[None, :]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * N_MELS)) * np.sqrt(2.0 / N_MELS)
    basis[0] /= np.sqrt(2.0)
    return basis
