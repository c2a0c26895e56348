"""Where MuseTalk looks and how its face goes back: the crop, the mask and the paste.

The crop is MuseTalk's (``preprocessing.get_landmark_and_bbox`` + v1.5's margin): as wide as
the face outline, the nose ridge (68-point landmark 29) at its vertical centre, the chin at
its bottom plus ``EXTRA_MARGIN`` pixels, squeezed to 256 × 256.  We read those points from
our 478-point face mesh (the usual mesh → 68-point correspondence); the track they come
from is already smoothed over time, which steadies the box that MuseTalk takes from each
frame alone (docs/musetalk.md measures both).

MuseTalk pastes through a BiSeNet face-parsing mask cut at the crop's middle.  We draw the
mask from the mesh instead: the lower face inside the jaw line, feathered, exactly zero
above the nose base and at the crop's border; the generated skin is shifted to the
frame's colour, and the generated lips to the filmed lips' hue.  All of it runs on the
engine's device, in batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .base import Face

#: the network's face size
SIZE = 256
#: v1.5's margin below the chin, pixels of the frame (the public ``--extra_margin`` default)
EXTRA_MARGIN = 10
#: face mesh → the 68-point outline MuseTalk measures width and chin on (jaw 0..16)
OUTLINE = (127, 234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361,
           323, 454, 356)
#: face mesh point for the 68-point nose-ridge landmark 29 (the crop's vertical centre)
NOSE_RIDGE = 5
NOSE_BASE = 2
#: the jaw line the mask follows, from one cheek at mouth height round the chin to the other
JAW = (132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361)
UPPER_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LOWER_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
#: feathering of the mask, crop pixels (Gaussian sigma)
FEATHER = 6.0
#: gap kept under the nose base before the mask may rise, crop pixels
NOSE_GAP = 4.0


@dataclass(frozen=True)
class Box:
    """Integer pixel rectangle [x0, x1) × [y0, y1) in the frame."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


def crop_box(face: Face, width: int, height: int, extra_margin: int = EXTRA_MARGIN) -> Box | None:
    """MuseTalk 1.5's crop for one face; None without landmarks or when it degenerates."""
    marks = face.landmarks
    if marks is None or len(marks) < 468:
        return None
    pts = np.asarray(marks, dtype=np.float64)
    outline = pts[list(OUTLINE)]
    if not np.all(np.isfinite(outline)):
        return None
    # the public code works on integer landmarks; so do we, for the same rounding
    x0, x1 = int(outline[:, 0].min()), int(outline[:, 0].max())
    chin = int(outline[:, 1].max())
    nose = int(pts[NOSE_RIDGE, 1])
    y0 = nose - (chin - nose)
    box = Box(max(0, x0), max(0, y0), min(width, x1), min(height, chin + extra_margin))
    if box.width < 16 or box.height < 16:
        return None
    return box


def to_crop(points: np.ndarray, box: Box) -> np.ndarray:
    """Frame pixel coordinates → 256-crop pixel coordinates."""
    scale = np.array([SIZE / box.width, SIZE / box.height])
    return (np.asarray(points, np.float64) - [box.x0, box.y0]) * scale


def crops(frames: torch.Tensor, boxes: Sequence[Box]) -> torch.Tensor:
    """(B, H, W, 3) uint8 BGR on the device → (B, 3, 256, 256) float RGB in [0, 1].

    Antialiased bicubic stands in for the public code's cv2 Lanczos (torch has no Lanczos).
    """
    out = []
    for b, box in enumerate(boxes):
        region = frames[b, box.y0 : box.y1, box.x0 : box.x1].permute(2, 0, 1).flip(0).float()[None]
        out.append(F.interpolate(region, size=(SIZE, SIZE), mode="bicubic", antialias=True, align_corners=False))
    return torch.cat(out).div_(255.0).clamp_(0.0, 1.0)


def masks(faces: Sequence[Face], boxes: Sequence[Box]) -> tuple[np.ndarray, np.ndarray]:
    """(B, 256, 256) float32 lower-face and lip masks in crop space.

    The lower-face mask is zero above ``NOSE_BASE`` + ``NOSE_GAP`` and at the border, and
    rises smoothly inside the jaw line; the lip mask covers the filmed lips grown downwards
    (a mouth that opens drops its lower lip), feathered.
    """
    lower = np.zeros((len(boxes), SIZE, SIZE), np.float32)
    lips = np.zeros_like(lower)
    rows = np.arange(SIZE, dtype=np.float32)[:, None]
    edge = np.minimum(np.arange(SIZE), np.arange(SIZE)[::-1]).astype(np.float32)
    border = np.clip(edge / (2 * FEATHER), 0, 1)
    border2d = np.minimum(border[:, None], border[None, :])
    for b, (face, box) in enumerate(zip(faces, boxes)):
        pts = to_crop(face.landmarks, box)  # type: ignore[arg-type]
        top = float(pts[NOSE_BASE, 1]) + NOSE_GAP
        jaw = pts[list(JAW)]
        poly = np.vstack([[jaw[0, 0], top], jaw, [jaw[-1, 0], top]])
        hard = np.zeros((SIZE, SIZE), np.float32)
        cv2.fillPoly(hard, [np.round(poly).astype(np.int32)], 1.0)
        soft = cv2.GaussianBlur(hard, (0, 0), FEATHER)
        below_nose = np.clip((rows - top) / (2 * FEATHER), 0.0, 1.0)
        lower[b] = soft * below_nose * border2d
        mouth = np.vstack([pts[list(UPPER_OUTER)], pts[list(LOWER_OUTER)][::-1]])
        lip = np.zeros((SIZE, SIZE), np.float32)
        cv2.fillPoly(lip, [np.round(mouth).astype(np.int32)], 1.0)
        grow = max(3, int(0.06 * SIZE))
        # anchored at the kernel's bottom row, the lips grow downwards only
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (grow, 2 * grow + 1))
        grown = cv2.dilate(lip, kernel, anchor=(grow // 2, 2 * grow))
        lips[b] = cv2.GaussianBlur(grown, (0, 0), FEATHER / 2) * lower[b]
    return lower, lips


def match_colour(generated: torch.Tensor, source: torch.Tensor, lower: torch.Tensor, lips: torch.Tensor) -> torch.Tensor:
    """Shift the generated face's skin to the frame's mean colour, and its lips to the filmed lips' hue.

    (B, 3, S, S) in [0, 1] each; masks (B, 1, S, S).  Means only: scaling the spread
    would amplify the VAE's noise.  The lips move in chroma only (colour minus grey), so
    an open mouth keeps its dark inside and teeth keep their brightness.
    """
    skin = lower * (1.0 - lips)
    shift = _mean(source, skin) - _mean(generated, skin)
    out = generated + shift
    chroma = _mean(_chroma(source), lips) - _mean(_chroma(out), lips)
    return (out + lips * chroma).clamp_(0.0, 1.0)


def _chroma(image: torch.Tensor) -> torch.Tensor:
    return image - image.mean(dim=1, keepdim=True)


def _mean(image: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    total = weight.sum(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    return (image * weight).sum(dim=(2, 3), keepdim=True) / total


def paste(frames: torch.Tensor, faces256: torch.Tensor, weights256: torch.Tensor, boxes: Sequence[Box],
          nose_rows: Sequence[int]) -> None:
    """Blend each (3, 256, 256) RGB face into its frame (in place, (B, H, W, 3) uint8 BGR).

    The face and its mask are resized to the box; rows above ``nose_rows[b]`` keep
    weight 0 whatever the resampling does, so the face above the nose is byte-identical.
    """
    for b, box in enumerate(boxes):
        size = (box.height, box.width)
        face = F.interpolate(faces256[b : b + 1], size=size, mode="bilinear", align_corners=False,
                             antialias=box.height < SIZE or box.width < SIZE)[0]
        weight = F.interpolate(weights256[b : b + 1], size=size, mode="bilinear", align_corners=False)[0]
        cut = max(0, min(box.height, nose_rows[b] - box.y0))
        weight[:, :cut] = 0.0
        region = frames[b, box.y0 : box.y1, box.x0 : box.x1]
        original = region.permute(2, 0, 1).float()
        mixed = original + weight * (face.flip(0).mul(255.0) - original)
        region.copy_(mixed.round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0))
