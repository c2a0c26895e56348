"""The mouth-texture measures (benchmarks/mouth_texture.py) on images with known answers."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
tex = pytest.importorskip("mouth_texture")


def _face_marks(cx: float = 200.0, cy: float = 260.0, half: float = 40.0) -> np.ndarray:
    """68 dlib-like points: eyes 120 px apart, an elliptical outer lip contour around (cx, cy)."""
    marks = np.zeros((68, 2))
    marks[36], marks[45] = (cx - 60, cy - 110), (cx + 60, cy - 110)
    angles = np.linspace(np.pi, -np.pi, 12, endpoint=False)
    marks[48:60] = np.stack([cx + half * np.cos(angles), cy - 0.4 * half * np.sin(angles)], axis=1)
    marks[48], marks[54] = (cx - half, cy), (cx + half, cy)
    return marks


def test_ssim_and_psnr_of_an_image_with_itself_are_perfect_and_drop_with_noise():
    """SSIM 1 and PSNR 99 (the cap) for identical crops; noise lowers both."""
    rng = np.random.default_rng(1)
    image = cv2.GaussianBlur(rng.integers(0, 255, (112, 160)).astype(np.uint8), (7, 7), 2)
    noisy = np.clip(image + rng.normal(0, 12, image.shape), 0, 255).astype(np.uint8)
    assert tex.ssim(image, image) == pytest.approx(1.0)
    assert 99.0 == tex.psnr(image, image)
    assert tex.ssim(image, noisy) < 0.9 and tex.psnr(image, noisy) < 30.0


def test_mouth_crop_puts_the_corners_where_it_promises():
    """A frame with two marked corners, rotated and scaled, comes out with the marks at CORNERS."""
    frame = np.zeros((400, 400, 3), np.uint8)
    marks = _face_marks()
    for x, y in (marks[48], marks[54]):
        cv2.circle(frame, (int(x), int(y)), 3, (255, 255, 255), -1)
    crop = tex.mouth_crop(frame, marks)
    assert crop.shape == (tex.CROP[1], tex.CROP[0])
    for x, y in tex.CORNERS:
        assert crop[int(y), int(x)] > 200


def test_blur_lowers_sharpness():
    """The variance of the Laplacian falls when the same crop is blurred."""
    rng = np.random.default_rng(2)
    crop = rng.integers(0, 255, (112, 160)).astype(np.uint8)
    assert tex.sharpness(cv2.GaussianBlur(crop, (5, 5), 1.5)) < 0.2 * tex.sharpness(crop)


def test_a_hard_edge_around_the_lips_raises_the_seam_energy():
    """A flat face gives no gradient in the ring; a pasted patch with a hard border around the
    lips (a visible seam) gives a lot."""
    marks = _face_marks()
    flat = np.full((400, 400, 3), 150, np.uint8)
    seamed = flat.copy()
    cv2.rectangle(seamed, (150, 235), (250, 285), (120, 120, 120), -1)
    assert tex.seam_energy(flat, marks) == 0.0
    assert tex.seam_energy(seamed, marks) > 100.0
