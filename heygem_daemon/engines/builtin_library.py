"""A per-avatar mouth library: the person's own filmed mouths, in a face-aligned frame.

Built once per avatar video (the job layer picks the frames, decodes them at
the output size and caches the result beside the face track).  Each entry is a
mouth crop resampled into one shared face-aligned frame -- origin at the
mouth centre (midway between the lip corners), ``u`` along the eye line,
``v`` down the face, ``PX_PER_IOD`` pixels per outer eye-corner distance -- so
crops from different frames line up, plus the shape measured on that frame:
inner-lip gap, corner distance, lip contours, head turn and how much teeth
show.  The renderer (``builtin_exemplar``) maps an entry's lip contours onto
the output frame's and pastes its lips and mouth interior: real teeth and
lips at full sharpness instead of a painted cavity.
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any, Iterable, Sequence

import cv2
import numpy as np

from .builtin_geometry import COLUMNS, MOUTH_CORNERS, SIDE_REACH, plan_warp, source_gap

#: crop extent in eye distances: |u| <= U_REACH, -V_ABOVE <= v <= V_BELOW
U_REACH = 0.62
V_ABOVE = 0.30
V_BELOW = 0.45
#: the library's resolution is the footage's own (median eye distance in pixels), within these bounds
MIN_PX_PER_IOD, MAX_PX_PER_IOD = 48, 200
#: most entries kept (bounds the cache: ~50 KB each at 150 px per eye distance)
MAX_ENTRIES = 160
#: opening bins the entries are spread over, so rare wide openings are kept
OPENING_BINS = 24
NOSE_TIP = 1
VERSION = 1


@dataclass(frozen=True)
class MouthLibrary:
    """Aligned mouth crops of one avatar video and the shape measured on each."""

    #: (N, H, W, 3) uint8 BGR in the shared face-aligned frame
    crops: np.ndarray
    #: pixels per eye distance in the crops; the mouth centre is at pixel (cx, cy)
    px_per_iod: float
    #: (N,) inner-lip gap / eye distance (as ``builtin_geometry.source_gap``)
    gap: np.ndarray
    #: (N,) lip-corner distance / eye distance
    width: np.ndarray
    #: (N,) nose tip's sideways offset from the mouth centre / eye distance (head turn)
    yaw: np.ndarray
    #: (N,) share of the inner-mouth area that is bright (teeth showing)
    teeth: np.ndarray
    #: (N, 4, COLUMNS) v of upper outer, upper inner, lower inner, lower outer lip / eye distance,
    #: at columns ``column_positions()`` half mouth-widths from the centre
    knots: np.ndarray
    #: source frame number of each entry (for the report and for tests)
    frames: np.ndarray

    def __len__(self) -> int:
        return len(self.gap)

    @property
    def centre(self) -> tuple[float, float]:
        return U_REACH * self.px_per_iod, V_ABOVE * self.px_per_iod

    def write(self, fh: IO[Any]) -> None:
        """Serialise (uncompressed npz: crops are noise-rich, zlib gains little and costs seconds)."""
        np.savez(fh, crops=self.crops, px_per_iod=np.float64(self.px_per_iod), gap=self.gap, width=self.width,
                 yaw=self.yaw, teeth=self.teeth, knots=self.knots, frames=self.frames,
                 version=np.int64(VERSION))

    @classmethod
    def read(cls, fh: IO[Any]) -> "MouthLibrary":
        with np.load(fh, allow_pickle=False) as data:
            if int(data["version"]) != VERSION:
                raise ValueError(f"mouth library version {int(data['version'])}, expected {VERSION}")
            library = cls(crops=data["crops"], px_per_iod=float(data["px_per_iod"]), gap=data["gap"],
                          width=data["width"], yaw=data["yaw"], teeth=data["teeth"], knots=data["knots"],
                          frames=data["frames"])
        if library.crops.ndim != 4 or library.knots.shape != (len(library), 4, COLUMNS):
            raise ValueError("mouth library arrays do not fit together")
        return library


def column_positions() -> np.ndarray:
    """Where the knot columns lie, in half mouth-widths (as ``builtin_geometry`` samples them)."""
    return np.linspace(-SIDE_REACH, SIDE_REACH, COLUMNS)


def pick_frames(gaps: np.ndarray, limit: int = MAX_ENTRIES) -> list[int]:
    """Frames to keep: spread evenly over the range of openings, the stillest of each.

    ``gaps[i]`` is frame i's tracked opening (NaN: no face).  Bins over the
    *range* (not the ranks) keep the few wide openings a presenter makes.
    Within a bin the frames whose opening changes least (from the frame
    before to the frame after) come first: a mouth in fast motion is blurred
    on film and its landmarks lag, so its crop would paste soft and misaligned.
    """
    found = np.flatnonzero(np.isfinite(gaps))
    if len(found) == 0:
        return []
    padded = np.concatenate([[np.nan], gaps, [np.nan]])
    motion = np.nan_to_num(np.abs(padded[2:] - padded[:-2]) / 2.0, nan=np.inf)
    lo, hi = float(np.min(gaps[found])), float(np.max(gaps[found]))
    bins = np.minimum(((gaps[found] - lo) / max(hi - lo, 1e-9) * OPENING_BINS).astype(int), OPENING_BINS - 1)
    members = [found[bins == b] for b in range(OPENING_BINS)]
    share = max(1, limit // max(1, sum(len(m) > 0 for m in members)))
    picked: list[int] = []
    for frames in members:
        picked += [int(i) for i in frames[np.argsort(motion[frames], kind="stable")][:share]]
    return sorted(picked)


def library_scale(landmarks: Sequence[np.ndarray]) -> float:
    """Pixels per eye distance for the crops: the footage's own (median), within bounds."""
    iods = [float(np.linalg.norm(m[263] - m[33])) for m in landmarks]
    return float(np.clip(np.median(iods), MIN_PX_PER_IOD, MAX_PX_PER_IOD)) if iods else float(MIN_PX_PER_IOD)


def build_library(faces: Iterable[tuple[int, np.ndarray, np.ndarray]], px_per_iod: float,
                  workers: int = 1) -> MouthLibrary:
    """Crop and measure each (frame number, frame, (478, 2) pixel landmarks) as it comes: only the
    crops are kept, never the frames (a 720p frame is 50 times a crop).  ``workers`` threads cut
    entries side by side (OpenCV's Lanczos warp releases the GIL; two halve the time on two cores,
    where its own row-splitting of a small crop gained a fifth), at most two frames each in hand."""
    px = px_per_iod
    height, width = int(round((V_ABOVE + V_BELOW) * px)), int(round(2 * U_REACH * px))
    crops, stats, knots, numbers = [], [], [], []
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="mouth-library") as pool:
        faces = iter(faces)
        while chunk := list(itertools.islice(faces, 2 * max(1, workers))):
            cut = pool.map(lambda face: _entry(face[1], face[2], px, (width, height)), chunk)
            for (number, _, _), (crop, stat, knot) in zip(chunk, cut):
                crops.append(crop)
                stats.append(stat)
                knots.append(knot)
                numbers.append(number)
    stat = np.array(stats, dtype=np.float32).reshape(-1, 4)
    return MouthLibrary(
        crops=np.stack(crops) if crops else np.zeros((0, height, width, 3), np.uint8), px_per_iod=px,
        gap=stat[:, 0], width=stat[:, 1], yaw=stat[:, 2], teeth=stat[:, 3],
        knots=np.stack(knots).astype(np.float32) if knots else np.zeros((0, 4, COLUMNS), np.float32),
        frames=np.asarray(numbers, dtype=np.int64))


def _entry(frame: np.ndarray, marks: np.ndarray, px: float, size: tuple[int, int]):
    marks = np.asarray(marks, dtype=np.float64)
    plan = plan_warp(marks, frame, 0.0, 0.0, 0.0)
    iod = plan.iod
    origin, axis_u, axis_v = plan.origin.astype(np.float64), plan.axis_u.astype(np.float64), plan.axis_v.astype(np.float64)
    # crop pixel (x, y) -> frame pixel: origin + (x - cx) / px * iod * u + (y - cy) / px * iod * v
    s = iod / px
    cx, cy = U_REACH * px, V_ABOVE * px
    matrix = np.array([[s * axis_u[0], s * axis_v[0], 0.0], [s * axis_u[1], s * axis_v[1], 0.0]])
    matrix[:, 2] = origin - matrix[:, :2] @ np.array([cx, cy])
    crop = cv2.warpAffine(frame, matrix, size, flags=cv2.INTER_LANCZOS4 | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)
    knots = plan.src_knots[1:5].astype(np.float64) / iod
    corners = marks[list(MOUTH_CORNERS)]
    yaw = float(np.dot(marks[NOSE_TIP] - origin, axis_u)) / iod
    stats = (source_gap(marks), float(np.linalg.norm(corners[1] - corners[0])) / iod, yaw,
             _teeth(crop, knots, plan.half_width / iod, px))
    return crop, stats, knots


def _teeth(crop: np.ndarray, knots: np.ndarray, half: float, px: float) -> float:
    """Share of the inner-lip area (between the inner contours, inside the corners) that is bright."""
    height, width = crop.shape[:2]
    cx, cy = U_REACH * px, V_ABOVE * px
    u = (np.arange(width) - cx) / px / max(half, 1e-6)
    top = np.interp(u, column_positions(), knots[1]) * px + cy
    bottom = np.interp(u, column_positions(), knots[2]) * px + cy
    rows = np.arange(height)[:, None]
    inside = (rows > top[None, :]) & (rows < bottom[None, :]) & (np.abs(u) < 0.8)[None, :]
    if inside.sum() < 4:
        return 0.0
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY).astype(np.float32)
    skin = float(np.median(grey))
    return float(np.mean(grey[inside] > max(skin * 1.1, 120.0)))
