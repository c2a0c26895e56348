"""What an avatar video's own speech tells about its mouth: calibration and a sync check.

Most avatar videos carry the person's own speech.  Their mouth openings
(measured by the face tracker, as inner-lip gap over eye distance) next to the
mouth curve predicted from their own audio give two things:

* **calibration**: this person's rest opening (in pauses) and how far they
  open when they speak, so a new voice moves their mouth within their own
  range instead of a generic one (people differ by 3x: a news presenter opens
  to 0.06 of the eye distance, an excited talker to 0.2);
* **a sync figure**: the last third of the footage is held out of the
  calibration, predicted from its own audio and compared with the real
  frames (Pearson r, the lead that fits best).  It is an honest, per-video
  estimate of how well the speech-to-mouth stage reads this person.

Pure numbers in, numbers out: the job layer does the decoding and tracking.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .curve import MouthCurve

#: less voiced sound than this in the footage: no calibration (the generic opening range)
MIN_SPEECH_S = 2.0
#: ... and below this there is nothing to speak of: "the video has no speech"
NO_SPEECH_S = 0.5
#: fewer held-out frames with a face than this: no sync figure
MIN_HELD_OUT_FRAMES = 25
HELD_OUT_SHARE = 1.0 / 3.0
#: lags searched for the sync figure (frames either side)
MAX_LAG_FRAMES = 8
#: openings (inner-lip gap / eye distance) a calibration may choose
_REST_RANGE = (0.0, 0.08)
_OPEN_RANGE = (0.03, 0.25)
#: quantiles: "rest" is a typical pause, "open" a wide but not extreme opening
_REST_Q, _OPEN_Q = 25, 95
#: the calibrated span is widened a little: at a news presenter's small openings
#: (a few pixels) encoding and measuring noise would otherwise swamp the motion
SPAN_GAIN = 1.5
#: 2: a short clip's sync reason says how much speech it has (version 1 called it "no speech")
VERSION = 2


@dataclass(frozen=True)
class SyncCheck:
    r_truth: float
    lead_ms: int
    frames: int


@dataclass(frozen=True)
class AvatarProfile:
    """Per-video calibration; ``rest_gap``/``open_gap`` None when unknown (generic range)."""

    rest_gap: float | None = None
    #: the opening the curve's own typical speech peak maps to
    open_gap: float | None = None
    sync: SyncCheck | None = None
    #: why ``sync`` is None, in plain words
    sync_reason: str | None = None
    version: int = VERSION

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "AvatarProfile":
        sync = data.get("sync")
        return cls(rest_gap=data.get("rest_gap"), open_gap=data.get("open_gap"),
                   sync=SyncCheck(**sync) if sync else None, sync_reason=data.get("sync_reason"),
                   version=int(data.get("version", 0)))


def profile_without_speech(gaps: np.ndarray, reason: str) -> AvatarProfile:
    """Only the rest pose is known (a silent video mostly shows the mouth at rest)."""
    found = gaps[np.isfinite(gaps)]
    rest = _clip(float(np.percentile(found, 50)), _REST_RANGE) if len(found) else None
    return AvatarProfile(rest_gap=rest, sync_reason=reason)


def analyse(own_curve: MouthCurve, gaps: np.ndarray, fps: float) -> AvatarProfile:
    """Calibrate on the first two thirds of the footage, check sync on the last third.

    ``own_curve`` is the footage's own audio through the same speech stage as
    any job audio; ``gaps[i]`` is the tracked opening in frame i (NaN: no face).
    """
    voiced_s = float(own_curve.voiced.sum()) / own_curve.rate_hz if len(own_curve.voiced) else 0.0
    if voiced_s < MIN_SPEECH_S:
        # a short clip of someone talking is not a silent one: the report says which it is
        reason = "the video has no speech" if voiced_s < NO_SPEECH_S else (
            f"too little speech to learn this person's mouth from ({voiced_s:.1f} s heard, {MIN_SPEECH_S:g} s needed)")
        return profile_without_speech(gaps, reason)
    predicted = own_curve.at(np.arange(len(gaps)) / fps).open.astype(np.float64)
    cut = int(round(len(gaps) * (1.0 - HELD_OUT_SHARE)))
    rest, opened = _range(predicted[:cut], gaps[:cut])
    if rest is None:
        return profile_without_speech(gaps, "no face was found in the part of the video used for calibration")
    held_pred, held_real = predicted[cut:], gaps[cut:]
    keep = np.isfinite(held_real)
    if keep.sum() < MIN_HELD_OUT_FRAMES or held_pred[keep].std() < 1e-6 or held_real[keep].std() < 1e-9:
        return AvatarProfile(rest_gap=rest, open_gap=opened,
                             sync_reason="too little speech with a visible face to check (under 1 s)")
    r = _pearson(held_pred, held_real)
    lead = _best_lead(held_pred, held_real, fps)
    return AvatarProfile(rest_gap=rest, open_gap=opened,
                         sync=SyncCheck(r_truth=round(r, 3), lead_ms=lead, frames=int(keep.sum())))


def _range(predicted: np.ndarray, gaps: np.ndarray) -> tuple[float | None, float | None]:
    """Rest opening in predicted pauses, and the opening the curve's speech peaks should reach."""
    keep = np.isfinite(gaps)
    if keep.sum() < 10:
        return None, None
    pauses = keep & (predicted < 0.05)
    speech = keep & (predicted >= 0.05)
    rest_pool = gaps[pauses] if pauses.sum() >= 5 else gaps[keep]
    rest = _clip(float(np.percentile(rest_pool, _REST_Q)), _REST_RANGE)
    if speech.sum() < 10:
        return rest, None
    person_peak = float(np.percentile(gaps[speech], _OPEN_Q))
    curve_peak = max(float(np.percentile(predicted[speech], _OPEN_Q)), 0.2)
    # the curve's typical peak should land on the person's typical wide opening
    opened = rest + SPAN_GAIN * max(person_peak - rest, 0.0) / curve_peak
    return rest, _clip(opened, (max(_OPEN_RANGE[0], rest + 0.02), _OPEN_RANGE[1]))


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 3 or a[keep].std() < 1e-9 or b[keep].std() < 1e-9:
        return float("nan")
    return float(np.corrcoef(a[keep], b[keep])[0, 1])


def _best_lead(predicted: np.ndarray, real: np.ndarray, fps: float) -> int:
    """The lead (ms) of the real mouth over the predicted one that correlates best.

    The prediction already includes the speech stage's lead; a result near 0
    means that lead fits this person, positive means their mouth moves earlier still.
    """
    best, best_lag = -np.inf, 0
    for lag in range(-MAX_LAG_FRAMES, MAX_LAG_FRAMES + 1):
        # real mouth `lag` frames ahead: real[i] matches predicted[i + lag]
        a, b = (predicted[lag:], real[: len(real) - lag]) if lag >= 0 else (predicted[:lag], real[-lag:])
        r = _pearson(a, b)
        if np.isfinite(r) and r > best:
            best, best_lag = r, lag
    return int(round(1000.0 * best_lag / fps))


def _clip(value: float, bounds: tuple[float, float]) -> float:
    return round(float(np.clip(value, *bounds)), 4)
