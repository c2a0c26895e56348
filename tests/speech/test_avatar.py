"""An avatar's own speech and mouth: calibration range and the held-out sync figure."""

from __future__ import annotations

import numpy as np

from heygem_daemon.speech.avatar import AvatarProfile, analyse
from heygem_daemon.speech.curve import MouthCurve

FPS = 25.0
RATE_HZ = 100.0


def speech_curve(seconds: float, seed: int = 0) -> MouthCurve:
    """A talking curve: syllables of random height every ~200 ms, with pauses."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE_HZ)
    t = np.arange(n) / RATE_HZ
    heights = rng.uniform(0.2, 1.0, size=int(seconds * 5) + 2)
    opening = np.clip(np.sin(np.pi * t * 5.0), 0, None) * heights[(t * 5).astype(int)]
    opening[(t % 3.0) > 2.4] = 0.0  # a pause every 3 s
    voiced = opening > 0.02
    zeros = np.zeros(n, dtype=np.float32)
    return MouthCurve(RATE_HZ, opening.astype(np.float32), zeros, zeros, "phones:pocketsphinx", voiced)


def real_gaps(curve: MouthCurve, rest: float, span: float, lead_frames: int = 0, noise: float = 0.0,
              seed: int = 1) -> np.ndarray:
    """What a tracker would measure on a person whose mouth follows ``curve`` (optionally ahead of it)."""
    frames = int(curve.duration_s * FPS)
    predicted = curve.at((np.arange(frames) + lead_frames) / FPS).open
    rng = np.random.default_rng(seed)
    return rest + span * predicted + noise * rng.standard_normal(frames)


def test_a_person_who_moves_as_predicted_scores_high_with_no_extra_lead():
    """Held-out frames that follow the prediction give r close to 1 and a lead of 0 ms."""
    curve = speech_curve(12.0)
    profile = analyse(curve, real_gaps(curve, 0.02, 0.08, noise=0.003), FPS)
    assert profile.sync is not None
    assert profile.sync.r_truth > 0.9
    assert profile.sync.lead_ms == 0
    assert profile.sync.frames == 100  # the last third of 300 frames


def test_the_lead_of_a_person_whose_mouth_moves_earlier_is_measured():
    """A mouth 3 frames (120 ms) ahead of the prediction is reported as lead_ms = 120."""
    curve = speech_curve(12.0)
    profile = analyse(curve, real_gaps(curve, 0.02, 0.08, lead_frames=3), FPS)
    assert profile.sync is not None and profile.sync.lead_ms == 120


def test_a_mouth_unrelated_to_the_speech_scores_near_zero():
    """If the filmed mouth has nothing to do with the sound, the figure says so."""
    curve = speech_curve(12.0)
    rng = np.random.default_rng(7)
    unrelated = 0.04 + 0.02 * np.convolve(rng.standard_normal(300), np.ones(4) / 4, mode="same")
    profile = analyse(curve, unrelated, FPS)
    assert profile.sync is not None and abs(profile.sync.r_truth) < 0.3


def test_calibration_follows_the_persons_own_range():
    """A reserved speaker gets a narrow opening range, an expressive one a wide one; both keep their rest pose."""
    curve = speech_curve(12.0)
    small = analyse(curve, real_gaps(curve, 0.01, 0.04), FPS)
    large = analyse(curve, real_gaps(curve, 0.03, 0.16), FPS)
    assert small.rest_gap is not None and large.rest_gap is not None
    assert abs(small.rest_gap - 0.01) < 0.01 and abs(large.rest_gap - 0.03) < 0.015
    assert small.open_gap < large.open_gap
    assert small.open_gap < 0.12 and large.open_gap > 0.15


def test_no_speech_gives_no_figure_and_says_why():
    """A silent avatar video: sync is None with 'the video has no speech'; the rest pose is still learned."""
    n = 1200
    silent = MouthCurve(RATE_HZ, np.zeros(n, np.float32), np.zeros(n, np.float32), np.zeros(n, np.float32),
                        "loudness", np.zeros(n, dtype=bool))
    profile = analyse(silent, np.full(300, 0.015), FPS)
    assert profile.sync is None and profile.sync_reason == "the video has no speech"
    assert profile.rest_gap == 0.015 and profile.open_gap is None


def test_a_short_clip_of_someone_talking_is_not_called_silent():
    """About a second of speech is too little to calibrate on, and the reason says so, with the seconds heard."""
    curve = speech_curve(2.5)
    assert 0.5 < curve.voiced.sum() / RATE_HZ < 2.0
    profile = analyse(curve, real_gaps(curve, 0.02, 0.08), FPS)
    assert profile.sync is None and profile.open_gap is None
    assert profile.sync_reason is not None
    assert profile.sync_reason.startswith("too little speech to learn this person's mouth from (")
    assert "2 s needed" in profile.sync_reason and "no speech" not in profile.sync_reason


def test_no_face_in_the_calibration_part_gives_no_figure():
    """Frames without a face (NaN) are skipped; with none at all the reason is given."""
    curve = speech_curve(12.0)
    profile = analyse(curve, np.full(300, np.nan), FPS)
    assert profile.sync is None and "no face" in profile.sync_reason


def test_a_profile_survives_the_cache_round_trip():
    """The profile is stored as JSON beside the face track and read back equal."""
    curve = speech_curve(12.0)
    profile = analyse(curve, real_gaps(curve, 0.02, 0.08), FPS)
    assert AvatarProfile.from_dict(profile.to_dict()) == profile
