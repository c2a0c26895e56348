"""MediaPipe's face detector and attention face mesh, run on LiteRT (TFLite).

The two models ship in ``models/`` (see its README for licence and
provenance).  This module re-implements the part of MediaPipe's
``face_landmark_front_cpu`` graph that mediapipe's face-mesh solution ran with
``refine_landmarks=True``, so the landmarks keep MediaPipe's 478-point topology
and order and the values mediapipe 0.10.21 gave:

1. **Detection** (only when no face is being tracked): BlazeFace short range
   on the frame letterboxed to 128x128, 896 SSD anchors, the best face after
   weighted non-maximum suppression.
2. **Region of interest**: a square around the face, rotated so the eyes are
   level, 1.5x the detected box (``face_detection_front_detection_to_roi``).
3. **Landmarks**: the ROI warped to 192x192 and run through the attention
   mesh (``attention.py`` runs it on LiteRT); the 468 mesh points are refined
   with its lips, eyes and irises (``tensors_to_face_landmarks_with_attention``)
   and mapped back to the frame.
4. **Tracking**: the next frame's ROI comes from these landmarks
   (``face_landmark_landmarks_to_roi``); when the mesh's face-presence score
   falls below the threshold the detector runs again on the same frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from .attention import AttentionMesh

MODELS = Path(__file__).with_name("models")
DETECTOR_MODEL = MODELS / "face_detection_short_range.tflite"
MESH_MODEL = MODELS / "face_landmark_with_attention.tflite"

NUM_LANDMARKS = 478
NUM_MESH = 468
DETECTOR_SIZE = 128
MESH_SIZE = 192
#: face ROI side as a multiple of the face box (MediaPipe's RectTransformation scale)
FACE_SCALE = 1.5
#: weighted NMS merges detections overlapping the best one by more than this IoU
NMS_IOU = 0.3
#: landmark indices whose line sets the face ROI's rotation (outer eye corners)
FACE_AXIS = (33, 263)

# Where the attention mesh's refined regions go in the 478-point topology
# (MediaPipe's tensors_to_face_landmarks_with_attention.pbtxt).
LIPS = [
    61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 185, 40, 39, 37, 0, 267, 269, 270, 409,
    78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 191, 80, 81, 82, 13, 312, 311, 310, 415,
    76, 77, 90, 180, 85, 16, 315, 404, 320, 307, 306, 184, 74, 73, 72, 11, 302, 303, 304, 408,
    62, 96, 89, 179, 86, 15, 316, 403, 319, 325, 292, 183, 42, 41, 38, 12, 268, 271, 272, 407,
]  # fmt: skip
LEFT_EYE = [
    33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173,
    130, 25, 110, 24, 23, 22, 26, 112, 243, 247, 30, 29, 27, 28, 56, 190,
    226, 31, 228, 229, 230, 231, 232, 233, 244, 113, 225, 224, 223, 222, 221, 189,
    35, 124, 46, 53, 52, 65, 143, 111, 117, 118, 119, 120, 121, 128, 245,
    156, 70, 63, 105, 66, 107, 55, 193,
]  # fmt: skip
RIGHT_EYE = [
    263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398,
    359, 255, 339, 254, 253, 252, 256, 341, 463, 467, 260, 259, 257, 258, 286, 414,
    446, 261, 448, 449, 450, 451, 452, 453, 464, 342, 445, 444, 443, 442, 441, 413,
    265, 353, 276, 283, 282, 295, 372, 340, 346, 347, 348, 349, 350, 357, 465,
    383, 300, 293, 334, 296, 336, 285, 417,
]  # fmt: skip
REFINEMENTS = (
    ("output_lips", np.array(LIPS)),
    ("output_left_eye", np.array(LEFT_EYE)),
    ("output_right_eye", np.array(RIGHT_EYE)),
    ("output_left_iris", np.arange(468, 473)),
    ("output_right_iris", np.arange(473, 478)),
)


@dataclass(frozen=True)
class Roi:
    """A rotated square region in frame pixels: centre, side and angle (radians)."""

    cx: float
    cy: float
    side: float
    angle: float

    def to_crop(self, size: int) -> np.ndarray:
        """2x3 affine matrix from frame pixels to a ``size`` x ``size`` crop of this ROI.

        The region's corners go to the crop's corners, used as they are by
        OpenCV's warp and for mapping landmarks back, as MediaPipe's
        ImageToTensor and LandmarkProjection do: this reproduces mediapipe's
        landmarks to a few hundredths of a pixel (docs/tracking.md)."""
        cos, sin = np.cos(self.angle), np.sin(self.angle)
        half = self.side / 2
        # frame positions of the crop's top-left, top-right and bottom-left corners
        corners = np.float32(
            [
                [self.cx - half * cos + half * sin, self.cy - half * sin - half * cos],
                [self.cx + half * cos + half * sin, self.cy + half * sin - half * cos],
                [self.cx - half * cos - half * sin, self.cy - half * sin + half * cos],
            ]
        )
        return cv2.getAffineTransform(corners, np.float32([[0, 0], [size, 0], [0, size]]))


def roi_around(axis: np.ndarray, box: tuple[float, float, float, float], scale: float) -> Roi:
    """Square ROI on ``box`` (x0, y0, x1, y1), ``scale`` x its long side, turned so ``axis[0]→axis[1]`` is level."""
    x0, y0, x1, y1 = box
    (ax, ay), (bx, by) = axis[0], axis[1]
    side = max(x1 - x0, y1 - y0) * scale
    return Roi((x0 + x1) / 2, (y0 + y1) / 2, side, float(np.arctan2(by - ay, bx - ax)))


def roi_from_points(points: np.ndarray, axis: tuple[int, int], scale: float) -> Roi:
    """ROI on the bounding box of ``points`` (pixels), level along ``points[axis]``."""
    box = (*points.min(axis=0), *points.max(axis=0))
    return roi_around(points[list(axis)], box, scale)


@lru_cache(maxsize=1)
def _anchors() -> np.ndarray:
    """(896, 2) anchor centres of BlazeFace short range, in units of the 128 px input."""
    layers = [(16, 2), (8, 6)]  # (grid, anchors per cell): strides 8 | 16, 16, 16
    centres = []
    for grid, per_cell in layers:
        ys, xs = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
        cells = np.stack([(xs + 0.5) / grid, (ys + 0.5) / grid], axis=-1).reshape(-1, 2)
        centres.append(np.repeat(cells, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


class _Model:
    """One LiteRT interpreter: a float image in, its outputs (ordered by size, largest first) out."""

    def __init__(self, path: Path, threads: int) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = self._interpreter.get_output_details()
        self._outputs = [d["index"] for d in sorted(outputs, key=lambda d: -int(np.prod(d["shape"])))]

    def __call__(self, image: np.ndarray) -> list[np.ndarray]:
        self._interpreter.set_tensor(self._input, image[None])
        self._interpreter.invoke()
        return [self._interpreter.get_tensor(index).reshape(-1) for index in self._outputs]


class FaceMesh:
    """One video's face-mesh state: the detector, the attention mesh and the ROI tracked between frames.

    Not thread-safe (neither are LiteRT interpreters): one per concurrently
    tracked video."""

    def __init__(
        self, *, min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5, threads: int = 1
    ) -> None:
        self._detect_conf = min_detection_confidence
        self._track_conf = min_tracking_confidence
        self._detector = _Model(DETECTOR_MODEL, threads)
        self._mesh = AttentionMesh(MESH_MODEL, threads)
        self._roi: Roi | None = None

    def __enter__(self) -> "FaceMesh":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._roi = None

    def process(self, bgr: np.ndarray, shrink: int = 1) -> np.ndarray | None:
        """(478, 2) landmarks in pixels of a BGR frame, or None when no face is found.

        ``shrink`` k > 1: track the frame as if shrunk k times in both axes with
        ``cv2.INTER_AREA`` (an exact k x k block average; ``exact_shrink``), the
        landmarks in the shrunk frame's pixels, but shrink only the pixels around
        the face (the detector, when it runs, gets the whole frame shrunk)."""
        marks = None if self._roi is None else self._landmarks(bgr, self._roi, shrink)
        if marks is None:
            roi = self._detect(bgr if shrink == 1 else shrink_whole(bgr, shrink))
            marks = None if roi is None else self._landmarks(bgr, roi, shrink)
        self._roi = None if marks is None else roi_from_points(marks[:NUM_MESH], FACE_AXIS, FACE_SCALE)
        return marks

    def _detect(self, bgr: np.ndarray) -> Roi | None:
        """ROI of the most confident face, or None below the detection threshold."""
        height, width = bgr.shape[:2]
        scale = DETECTOR_SIZE / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        pad_x, pad_y = (DETECTOR_SIZE - size[0]) // 2, (DETECTOR_SIZE - size[1]) // 2
        tensor = np.zeros((DETECTOR_SIZE, DETECTOR_SIZE, 3), np.float32)
        resized = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)[:, :, ::-1]
        tensor[pad_y : pad_y + size[1], pad_x : pad_x + size[0]] = resized / 127.5 - 1.0
        boxes, logits = self._detector(tensor)
        face = _best_face(boxes.reshape(-1, 16), logits, self._detect_conf)
        if face is None:
            return None
        # letterboxed input units -> frame pixels
        pixels = (face.reshape(-1, 2) * DETECTOR_SIZE - (pad_x, pad_y)) / scale
        return roi_around(pixels[2:4], (*pixels[0], *pixels[1]), FACE_SCALE)

    def _landmarks(self, bgr: np.ndarray, roi: Roi, shrink: int = 1) -> np.ndarray | None:
        """478 landmarks inside ``roi`` (pixels), or None when the face-presence score is low."""
        outputs = self._mesh(_crop(bgr, roi, MESH_SIZE, shrink))
        if _sigmoid(float(outputs["conv_faceflag"].reshape(-1)[0])) < self._track_conf:
            return None
        local = np.empty((NUM_LANDMARKS, 2), np.float32)
        local[:NUM_MESH] = outputs["output_mesh_identity"].reshape(NUM_MESH, 3)[:, :2]
        for name, indices in REFINEMENTS:
            local[indices] = outputs[name].reshape(len(indices), 2)
        return _to_frame(local, roi.to_crop(MESH_SIZE)).astype(np.float32)


def _crop(bgr: np.ndarray, roi: Roi, size: int, shrink: int = 1) -> np.ndarray:
    """The ``size`` x ``size`` RGB crop of ``roi``, as floats in [0, 1].

    Sampled straight from the (tracked) frame: bilinear warping skips pixels when it
    shrinks a lot, so a region more than 3x the crop is warped to ``factor``
    (2-4) times the crop first and area-averaged down (an integer factor keeps
    the coordinates exact).  ``shrink`` > 1: ``bgr`` is that many times the
    tracked frame (``FaceMesh.process``)."""
    factor = max(1, min(4, int(roi.side / size / 1.5)))
    matrix = roi.to_crop(size * factor)
    big = size * factor
    source, matrix = _region(bgr, matrix, big, shrink)
    crop = cv2.warpAffine(source, matrix, (big, big), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if factor > 1:
        crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    # the same values as crop[:, :, ::-1].astype(np.float32) / 255, without the strided float copy
    return np.multiply(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB), np.float32(1 / 255), dtype=np.float32)


def exact_shrink(shape: tuple[int, ...], max_side: int) -> int:
    """k when shrinking a frame of ``shape`` to ``max_side`` is an exact k x k block average
    (k >= 2: 1280x720 -> 640x360 is 2, 1920x1080 is 3), 1 when it needs no shrink, 0 otherwise.

    cv2.INTER_AREA at an integer ratio in both axes averages each k x k block on
    its own, so any part of the shrunk frame can be made from its part of the
    frame alone, the same bytes as the whole shrink (tests/faces/test_facemesh.py)."""
    height, width = shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1.0:
        return 1
    small_w, small_h = max(1, round(width * scale)), max(1, round(height * scale))
    k = width // small_w
    return k if k >= 2 and small_w * k == width and small_h * k == height else 0


def shrink_whole(bgr: np.ndarray, shrink: int) -> np.ndarray:
    """The whole frame shrunk ``shrink`` times (``exact_shrink``), as ``segments.downscale`` does."""
    height, width = bgr.shape[:2]
    return cv2.resize(bgr, (width // shrink, height // shrink), interpolation=cv2.INTER_AREA)


#: pixels of the shrunk frame kept around the crop's corners: the bilinear warp reads the pixel
#: at and after each sample's position, fixed-point rounded
_REGION_MARGIN = 2


def _region(bgr: np.ndarray, matrix: np.ndarray, big: int, shrink: int) -> tuple[np.ndarray, np.ndarray]:
    """The part of the tracked frame a ``big`` x ``big`` warp through ``matrix`` reads, and the matrix
    moved onto it; ``shrink`` > 1: shrunk from that part of ``bgr`` alone.

    Shrinking the whole 720p frame cost about as much as the crop and the mesh's
    custom operators together; the face's region is a fraction of it.  The
    region is clipped to the frame, so a crop reaching past the edge still
    replicates the frame's edge pixels.  Unshrunk frames are warped from the
    same region and moved matrix too (a view, no copy): the moved matrix rounds
    a few crop pixels in a hundred crops one level differently from the frame's
    own, and this way a frame shrunk by the caller and one shrunk here give the
    same bytes."""
    height, width = bgr.shape[0] // shrink, bgr.shape[1] // shrink
    inverse = cv2.invertAffineTransform(matrix)
    corners = np.array([[0.0, 0.0], [big, 0.0], [0.0, big], [big, big]]) @ inverse[:, :2].T + inverse[:, 2]
    x0 = max(0, int(np.floor(corners[:, 0].min())) - _REGION_MARGIN)
    y0 = max(0, int(np.floor(corners[:, 1].min())) - _REGION_MARGIN)
    x1 = min(width, int(np.ceil(corners[:, 0].max())) + _REGION_MARGIN + 1)
    y1 = min(height, int(np.ceil(corners[:, 1].max())) + _REGION_MARGIN + 1)
    if x0 >= x1 or y0 >= y1:  # wholly off the frame: only its edge is replicated
        return (shrink_whole(bgr, shrink) if shrink > 1 else bgr), matrix
    if shrink == 1:
        region = bgr[y0:y1, x0:x1]
    else:
        region = cv2.resize(bgr[y0 * shrink : y1 * shrink, x0 * shrink : x1 * shrink], (x1 - x0, y1 - y0),
                            interpolation=cv2.INTER_AREA)
    moved = matrix.copy()
    moved[:, 2] += matrix[:, :2] @ np.array([x0, y0], np.float64)
    return region, moved


def _to_frame(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Crop pixels back to frame pixels through the inverse of the crop's affine ``matrix``."""
    inverse = cv2.invertAffineTransform(matrix)
    return points @ inverse[:, :2].T + inverse[:, 2]


def _sigmoid(value):
    return 1.0 / (1.0 + np.exp(-np.clip(value, -80.0, 80.0)))


def _best_face(raw: np.ndarray, logits: np.ndarray, threshold: float) -> np.ndarray | None:
    """Box corners and eye keypoints ((4 + 2*2,) in input units / 128) of the best face.

    Weighted NMS as MediaPipe does it, for one face: the top-scoring detection
    averaged with every detection overlapping it by more than ``NMS_IOU``,
    weighted by score."""
    scores = _sigmoid(np.clip(logits, -100.0, 100.0))
    keep = np.flatnonzero(scores >= threshold)
    if keep.size == 0:
        return None
    anchors = _anchors()[keep]
    values = raw[keep] / DETECTOR_SIZE
    centre = values[:, 0:2] + anchors
    half = values[:, 2:4] / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    eyes = values[:, 4:8] + np.tile(anchors, 2)
    best = int(np.argmax(scores[keep]))
    overlap = _iou(boxes[best], boxes) > NMS_IOU
    weights = scores[keep][overlap][:, None]
    merged = np.concatenate([boxes[overlap], eyes[overlap]], axis=1)
    return (merged * weights).sum(axis=0) / weights.sum()


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    lo = np.maximum(box[:2], boxes[:, :2])
    hi = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    area = np.prod(box[2:] - box[:2])
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    return inter / np.maximum(area + areas - inter, 1e-9)
