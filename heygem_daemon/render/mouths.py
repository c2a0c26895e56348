"""An avatar video's mouth library: built during its self-analysis, cached beside its face track.

The analysis (``render/avatar.py``) has just tracked the first frames of the
video; this module picks up to ``MAX_ENTRIES`` of them spread over the range
of openings, reads them back from the frames the analysis kept (or, past
those, decodes only them at the output size: ffmpeg selects them, so the
rest are never scaled or piped) and hands them to the builtin engine's
library builder.  One ``.npz`` per (video content hash, tracker, output size):
a new audio for a known avatar skips all of it.  Like every cache here it is
an optimisation: an unreadable entry is a miss.
"""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from ..engines.builtin_library import VERSION, MouthLibrary, build_library, library_scale, pick_frames
from ..faces.track import FaceTrack
from ..fsutil import atomic_file
from ..logging import get_logger
from ..media.frame_spool import FrameSpool
from ..media.frames import FrameReader, decode_rate
from .plan import VideoPlan, VideoTools

log = get_logger()


def library_path(tools: VideoTools, plan: VideoPlan) -> Path:
    entry = tools.track_cache.path_for(plan.digest, tools.tracker.name)
    width, height = plan.size
    return entry.with_name(entry.name.removesuffix(".npz") + f".mouths-v{VERSION}-{width}x{height}.npz")


def load_library(path: Path) -> MouthLibrary | None:
    try:
        with open(path, "rb") as fh:
            return MouthLibrary.read(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:  # a cache never fails a video
        log.warning("mouth_library_unreadable", path=str(path), error=str(exc))
        return None


def store_library(path: Path, library: MouthLibrary) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path, binary=True) as fh:
            library.write(fh)
    except OSError as exc:
        log.warning("mouth_library_unwritable", path=str(path), error=str(exc))


def build_mouths(video_path: Path, plan: VideoPlan, tools: VideoTools, track: FaceTrack, gaps: NDArray[np.float64],
                 decoded: FrameSpool | None = None) -> MouthLibrary:
    """The library of the tracked frames ``gaps`` covers (``gaps[i]``: frame i's opening, NaN: no face);
    their pictures come from ``decoded`` when it holds them all."""
    started = time.perf_counter()
    width, height = plan.size
    marks = {}
    for number in pick_frames(gaps):
        face = track.face(number, width, height)
        if face is not None and face.landmarks is not None:
            marks[number] = np.asarray(face.landmarks, dtype=np.float64)
    # as many threads as OpenCV has for this video (runtime.py: its share of the cores)
    scale, workers = library_scale(list(marks.values())), max(1, cv2.getNumThreads())
    # the analysis keeps its window's frames when they fit (render/video.py); they are the very
    # pictures the track was made from, where a second decode of a variable-rate video may land a
    # frame off
    if decoded is not None and decoded.covers(max(marks, default=-1) + 1):
        library = build_library(((number, _kept(decoded, number), marks[number]) for number in marks), scale, workers)
    else:
        with FrameReader(video_path, plan.size, fps_text=decode_rate(plan.info), only=list(marks)) as reader:
            faces = ((number, frame, marks[number]) for number, frame in zip(marks, reader))
            library = build_library(faces, scale, workers)
    log.info("mouth_library_built", entries=len(library), seconds=round(time.perf_counter() - started, 2),
             px_per_iod=round(library.px_per_iod, 1),
             gaps=[round(float(np.min(library.gap)), 3), round(float(np.max(library.gap)), 3)] if len(library) else None)
    return library


def _kept(decoded: FrameSpool, number: int) -> NDArray[np.uint8]:
    width, height = decoded.size
    frame = np.empty((height, width, 3), dtype=np.uint8)
    decoded.read_into(number, frame)
    return frame
