"""Per-avatar reference latents, computed once and kept beside the face track.

MuseTalk's own "avatar preparation" encodes every source frame once; so do we, across
jobs: one ``.npy`` per source frame under ``<cache>/faces/<avatar key>.musetalk-<fingerprint>/``.
The avatar key is the video's content digest and tracker (the face track's own key), and
the fingerprint covers what else the latents depend on: the VAE's weights file and the
crop geometry.  One file per frame, so the cache's size cap may evict any of them and a
missing or unreadable one is simply encoded again; never a failure.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Iterable

import numpy as np

from ..fsutil import atomic_file
from ..logging import get_logger

log = get_logger()

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def fingerprint(*parts: object) -> str:
    """A short digest of what the latents depend on besides the video."""
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:16]


class LatentCache:
    """(C, h, w) float32 latents per (avatar key, source frame)."""

    def __init__(self, root: Path, fingerprint: str) -> None:
        self.root = Path(root)
        self.fingerprint = fingerprint

    def folder(self, key: str) -> Path:
        safe = _UNSAFE.sub("_", key).strip("._") or "_"
        return self.root / f"{safe}.musetalk-{self.fingerprint}"

    def get(self, key: str, sources: Iterable[int]) -> dict[int, np.ndarray]:
        """The cached latents among ``sources``; absent or unreadable ones are left out."""
        folder = self.folder(key)
        found: dict[int, np.ndarray] = {}
        if not folder.is_dir():
            return found
        for source in set(int(s) for s in sources):
            path = folder / f"{source}.npy"
            try:
                found[source] = np.load(path, allow_pickle=False)
            except FileNotFoundError:
                continue
            except (OSError, ValueError, EOFError) as exc:
                log.warning("musetalk_latent_cache_unreadable", path=str(path), error=str(exc))
        return found

    def put(self, key: str, latents: dict[int, np.ndarray]) -> None:
        """Store atomically, one file per frame; errors are logged, never raised."""
        folder = self.folder(key)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for source, value in latents.items():
                with atomic_file(folder / f"{source}.npy", binary=True) as fh:
                    np.save(fh, np.ascontiguousarray(value, dtype=np.float32), allow_pickle=False)
        except OSError as exc:
            log.warning("musetalk_latent_cache_unwritable", folder=str(folder), error=str(exc))
