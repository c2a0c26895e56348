"""The self-reenactment benchmark's own arithmetic (benchmarks/truth_sync.py), on known series."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
truth_sync = pytest.importorskip("truth_sync")

FPS = 25.0


def test_segments_pair_equal_halves_of_at_most_ten_seconds():
    """A 6 s clip gives one pair of 3 s halves; a 40 s clip two pairs of 10 s; nothing overlaps."""
    assert [(0, 75), (75, 150)] == truth_sync.segments(150, FPS, 10.0)
    assert [(0, 250), (250, 500), (500, 750), (750, 1000)] == truth_sync.segments(1000, FPS, 10.0)


def test_best_lag_is_positive_when_the_rendered_mouth_is_late():
    """A render that follows the truth 3 frames late reports +120 ms; 2 frames early, -80 ms."""
    rng = np.random.default_rng(0)
    truth = np.convolve(rng.standard_normal(300), np.ones(3) / 3, mode="same")
    late = np.concatenate([np.zeros(3), truth[:-3]])
    early = np.concatenate([truth[2:], np.zeros(2)])
    assert 120.0 == truth_sync.best_lag(late, truth, FPS)
    assert -80.0 == truth_sync.best_lag(early, truth, FPS)


def test_nmae_is_in_units_of_the_real_mouths_swing():
    """Off by exactly one standard deviation of the truth everywhere gives 1.0."""
    truth = np.sin(np.linspace(0, 20, 400))
    assert truth_sync.nmae(truth + truth.std(), truth) == pytest.approx(1.0)
    assert truth_sync.nmae(truth, truth) == 0.0


def test_frames_without_a_face_are_left_out_of_r():
    """NaN (no face found by dlib) rows are skipped, not counted as zeros."""
    truth = np.sin(np.linspace(0, 20, 200))
    rendered = truth.copy()
    rendered[::7] = np.nan
    assert truth_sync.pearson(rendered, truth) == pytest.approx(1.0)
