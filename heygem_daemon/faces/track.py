"""A video's face track: compact per-frame arrays, resolution independent.

Coordinates are stored normalised to [0, 1] of the frame's width and height so
one cached track serves every output size of the same video.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..types import Face


@dataclass
class FaceTrack:
    #: (N, 4) x0, y0, x1, y1 normalised; NaN where no face
    boxes: np.ndarray
    #: (N, K, 2) normalised landmarks (float32) or None for box-only trackers
    landmarks: np.ndarray | None
    #: (N,) bool
    present: np.ndarray
    #: which tracker made it (cache key part)
    tracker: str = ""

    def __len__(self) -> int:
        return len(self.present)

    @property
    def frames_with_face(self) -> int:
        return int(self.present.sum())

    def first(self, count: int) -> "FaceTrack":
        """The track of the first ``count`` frames."""
        marks = None if self.landmarks is None else self.landmarks[:count]
        return FaceTrack(self.boxes[:count], marks, self.present[:count], self.tracker)

    def face(self, index: int, width: int, height: int) -> Face | None:
        """The face in source frame ``index`` in pixel coordinates of a width×height frame."""
        if index < 0 or index >= len(self.present) or not self.present[index]:
            return None
        scale = np.array([width, height], dtype=np.float32)
        box = self.boxes[index].reshape(2, 2) * scale
        marks = None if self.landmarks is None else self.landmarks[index].astype(np.float32) * scale
        return Face(box=box.reshape(4), landmarks=marks)

    def write(self, fh: BinaryIO) -> None:
        """Serialise to an open binary file (``load`` reads it back); the cache owns atomicity."""
        arrays = {"boxes": self.boxes, "present": self.present, "tracker": np.array(self.tracker)}
        if self.landmarks is not None:
            arrays["landmarks"] = self.landmarks
        np.savez(fh, **arrays)

    @classmethod
    def load(cls, path: Path) -> "FaceTrack":
        with np.load(path, allow_pickle=False) as data:
            marks = data["landmarks"] if "landmarks" in data.files else None
            return cls(
                boxes=data["boxes"], landmarks=marks, present=data["present"], tracker=str(data["tracker"])
            )
