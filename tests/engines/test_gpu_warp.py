"""The batched torch crop and paste (engines/gpu_warp.py) against the OpenCV path it stands in for.

Run on the CPU device here (no GPU on these boxes): the same tensor code runs on CUDA.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from heygem_daemon.engines.gpu_warp import FaceWindows
from heygem_daemon.engines.wav2lip import CROP, CropBox, crop_face, feather_mask, paste_face

HEIGHT, WIDTH = 360, 640
#: a large box (shrinks: INTER_AREA), a small one (grows: INTER_LINEAR), one at the
#: bottom-right corner (its window moves inward), one exactly the network's size
BOXES = [CropBox(200, 80, 430, 330), CropBox(10, 10, 80, 70), CropBox(500, 220, 640, 360), CropBox(0, 0, CROP, CROP)]


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    """Four smooth random frames (blurred noise: a picture's gradients, not salt and pepper)."""
    noise = np.random.default_rng(0).integers(0, 256, (len(BOXES) * HEIGHT, WIDTH, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 2.0).reshape(len(BOXES), HEIGHT, WIDTH, 3)


def _windows() -> FaceWindows:
    corners = np.array([[b.x0, b.y0, b.x1, b.y1] for b in BOXES])
    return FaceWindows.plan(corners, np.arange(len(BOXES)), (HEIGHT, WIDTH), "cpu")


def test_crop_is_opencvs_resize_within_one_grey_level(frames: np.ndarray) -> None:
    """Every box, shrunk or grown to 96×96, equals crop_face's cv2.resize to one grey level."""
    crops = _windows().crop(torch.from_numpy(frames), CROP).round().clamp(0, 255).to(torch.uint8).numpy()
    for crop, frame, box in zip(crops, frames, BOXES):
        diff = np.abs(crop.astype(int) - crop_face(frame, box).astype(int))
        assert diff.max() <= 1
        assert diff.mean() < 0.2


def test_paste_is_paste_face_inside_and_untouched_outside(frames: np.ndarray) -> None:
    """The blend equals paste_face to one grey level in the box; every other pixel is bit-identical."""
    mouths = np.random.default_rng(1).integers(0, 256, (len(BOXES), CROP, CROP, 3), dtype=np.uint8)
    mask = feather_mask(CROP)
    source = torch.from_numpy(frames.copy())
    out = source.clone()
    _windows().paste(source, out, torch.from_numpy(mouths).float(), torch.from_numpy(mask))
    assert np.array_equal(source.numpy(), frames)  # only ``out`` is written
    for pasted, frame, mouth, box in zip(out.numpy(), frames, mouths, BOXES):
        expected = frame.copy()
        paste_face(expected, box, mouth, mask)
        inside = np.zeros((HEIGHT, WIDTH), dtype=bool)
        inside[box.y0 : box.y1, box.x0 : box.x1] = True
        diff = np.abs(pasted.astype(int) - expected.astype(int))
        assert diff[inside].max() <= 1
        assert np.array_equal(pasted[~inside], frame[~inside])


def test_frames_without_a_box_are_not_written(frames: np.ndarray) -> None:
    """Boxes for frames 0 and 2 only: frames 1 and 3 of ``out`` stay as they were."""
    corners = np.array([[b.x0, b.y0, b.x1, b.y1] for b in BOXES[:2]])
    windows = FaceWindows.plan(corners, np.array([0, 2]), (HEIGHT, WIDTH), "cpu")
    source = torch.from_numpy(frames.copy())
    out = source.clone()
    windows.paste(source, out, torch.full((2, CROP, CROP, 3), 255.0), torch.ones(CROP, CROP))
    assert np.array_equal(out.numpy()[[1, 3]], frames[[1, 3]])
    assert not np.array_equal(out.numpy()[[0, 2]], frames[[0, 2]])


@pytest.mark.parametrize("corners, rows, problem", [
    ([[600, 0, 700, 100]], [0], "inside"),
    ([[10, 10, 10, 50]], [0], "non-empty"),
    ([[0, 0, 50, 50], [60, 60, 90, 90]], [1, 1], "one box per frame"),
])
def test_plan_refuses_boxes_it_cannot_honour(corners: list, rows: list, problem: str) -> None:
    """Boxes leaving the frame, empty boxes and two boxes in one frame are refused, not blended wrongly."""
    with pytest.raises(ValueError, match=problem):
        FaceWindows.plan(np.array(corners), np.array(rows), (HEIGHT, WIDTH), "cpu")
