"""Face tracks cached per (video content hash, tracker), so a known avatar
video with a new audio skips tracking.

A cache is an optimisation, never a source of failures: a missing, truncated
or otherwise unreadable entry is a miss and the video is tracked again.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from ..fsutil import atomic_file
from ..logging import get_logger
from .track import FaceTrack

log = get_logger()

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class FaceTrackCache:
    """One ``.npz`` file per (video digest, tracker name) under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, video_digest: str, tracker_name: str) -> Path:
        return self.root / f"{_safe(video_digest)}.{_safe(tracker_name)}.npz"

    def get(self, video_digest: str, tracker_name: str) -> FaceTrack | None:
        """The cached track, or None on a miss (absent, corrupt, or from another tracker)."""
        path = self.path_for(video_digest, tracker_name)
        if not path.is_file():
            return None
        try:
            track = FaceTrack.load(path)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            log.warning("face_cache_unreadable", path=str(path), error=str(exc))
            return None
        if track.tracker != tracker_name or not _consistent(track):
            log.warning("face_cache_mismatch", path=str(path))
            return None
        return track

    def prefixes(self, video_digest: str, tracker_name: str) -> list[int]:
        """Lengths of the cached tracks of this video's first frames (keys ``<digest>-first<N>``), shortest first."""
        stem, suffix = f"{_safe(video_digest)}-first", f".{_safe(tracker_name)}.npz"
        lengths = []
        for path in self.root.glob(f"{stem}*{suffix}") if self.root.is_dir() else []:
            count = path.name[len(stem):-len(suffix)]
            if count.isdigit():
                lengths.append(int(count))
        return sorted(lengths)

    def put(self, video_digest: str, tracker_name: str, track: FaceTrack) -> None:
        """Store atomically: readers see the old entry or the whole new one, never half."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.path_for(video_digest, tracker_name)
        # the temp name is unique per process and thread: two workers may cache the same video at once
        with atomic_file(path, binary=True) as fh:
            track.write(fh)


def _safe(part: str) -> str:
    """A single, harmless file-name component."""
    return _UNSAFE.sub("_", part).strip("._") or "_"


def _consistent(track: FaceTrack) -> bool:
    count = len(track.present)
    if track.boxes.shape != (count, 4) or track.present.dtype != bool:
        return False
    return track.landmarks is None or (track.landmarks.ndim == 3 and track.landmarks.shape[0] == count)
