"""How the rendered mouth looks, measured against filmed mouths with dlib's 68 landmarks.

Every measure works on **mouth crops aligned on dlib's outer mouth corners**
(points 48 and 54): a similarity transform puts the corners at fixed pixels of
a ``CROP`` image, so crops of different frames (render, truth, source) cover
the same part of the face at the same scale.

* ``ssim`` / ``psnr``: grey-level SSIM (Gaussian window, sigma 1.5, the usual
  constants) and PSNR of a rendered crop against the real speaker's crop;
* ``sharpness``: variance of the Laplacian of the grey crop (higher = more
  fine detail; the ratio render / filmed source, 1.0 = as sharp as filmed);
* ``seam``: gradient energy (squared Sobel magnitude) in a ring around the
  outer lips -- where the engine's pasted mouth is feathered into the frame
  -- measured on the rendered frame and on the source frame around each one's
  own lips; a visible seam raises the ratio above 1.

The engine's own landmarks and masks are never used: dlib finds the lips in
each image independently.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: crop size and where the two mouth corners land in it
CROP = (160, 112)
CORNERS = ((40.0, 44.0), (120.0, 44.0))
OUTER_LIPS = list(range(48, 60))
#: the seam ring: from the outer lips to this many outer eye-corner distances outside them
RING_IOD = 0.12


def mouth_crop(frame: np.ndarray, marks: np.ndarray) -> np.ndarray:
    """Grey (CROP) mouth crop with dlib points 48 and 54 at ``CORNERS``."""
    src = np.float64([marks[48], marks[54]])
    dst = np.float64(CORNERS)
    matrix = _similarity(src, dst)
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    return cv2.warpAffine(grey, matrix, CROP, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 matrix of the rotation + uniform scale + shift taking src[0], src[1] to dst[0], dst[1]."""
    s, d = src[1] - src[0], dst[1] - dst[0]
    scale = np.linalg.norm(d) / max(np.linalg.norm(s), 1e-9)
    angle = np.arctan2(d[1], d[0]) - np.arctan2(s[1], s[0])
    c, n = scale * np.cos(angle), scale * np.sin(angle)
    rot = np.array([[c, -n], [n, c]])
    return np.hstack([rot, (dst[0] - rot @ src[0])[:, None]])


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two grey images (Wang et al. 2004, Gaussian window sigma 1.5)."""
    x, y = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(img: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(img, (11, 11), 1.5)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    value = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(value[5:-5, 5:-5].mean())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def sharpness(crop: np.ndarray) -> float:
    """Variance of the Laplacian (fine detail) of a grey crop."""
    return float(cv2.Laplacian(crop.astype(np.float64), cv2.CV_64F, ksize=3).var())


def seam_energy(frame: np.ndarray, marks: np.ndarray) -> float:
    """Mean squared gradient magnitude in the ring around the outer lips."""
    iod = float(np.linalg.norm(marks[45] - marks[36]))
    reach = RING_IOD * iod
    lips = marks[OUTER_LIPS]
    x0, y0 = np.floor(lips.min(axis=0) - reach - 3).astype(int)
    x1, y1 = np.ceil(lips.max(axis=0) + reach + 3).astype(int)
    height, width = frame.shape[:2]
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
    grey = cv2.cvtColor(frame[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY).astype(np.float64)
    inside = np.zeros(grey.shape, np.uint8)
    cv2.fillPoly(inside, [np.round(lips - [x0, y0]).astype(np.int32)], 1)
    distance = cv2.distanceTransform(1 - inside, cv2.DIST_L2, 3)
    ring = (distance > 1.0) & (distance <= reach)
    gx, gy = cv2.Sobel(grey, cv2.CV_64F, 1, 0), cv2.Sobel(grey, cv2.CV_64F, 0, 1)
    return float(np.mean((gx * gx + gy * gy)[ring])) if ring.any() else float("nan")


@dataclass
class Texture:
    """Per render: means over the frames where dlib found the face in both images."""

    ssim: float
    psnr: float
    sharpness: float
    seam: float


def compare(rendered: list[np.ndarray | None], truth: list[np.ndarray | None]) -> tuple[float, float]:
    """Mean SSIM and PSNR of paired crops (None: no face found in that frame)."""
    pairs = [(a, b) for a, b in zip(rendered, truth) if a is not None and b is not None]
    if not pairs:
        return float("nan"), float("nan")
    return float(np.mean([ssim(a, b) for a, b in pairs])), float(np.mean([psnr(a, b) for a, b in pairs]))


def mean_of(values: list[float | None]) -> float:
    found = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(found)) if found else float("nan")
