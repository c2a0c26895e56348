"""Recognised phones cached on disk, keyed by audio content and model identity.

Re-running a job with the same audio (a retry, a second batch of videos) then
skips the phoneme model.  One small JSON file per (audio digest, model
identity) under ``<cache_dir>/phonemes/``, written atomically (temp file +
rename), so a crash never leaves a half file that a later run would trust.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable

from ..fsutil import atomic_file
from ..logging import get_logger
from .ctc import PhoneSegment

log = get_logger()

_VERSION = 1
_SAFE = re.compile(r"[^0-9A-Za-z_-]")


class PhonemeCache:
    """``get``/``put`` phone segments for one audio digest and one model identity."""

    def __init__(self, root: Path) -> None:
        self.folder = Path(root) / "phonemes"

    def path(self, digest: str, model_id: str) -> Path:
        return self.folder / f"{_SAFE.sub('_', digest)}-{_SAFE.sub('_', model_id)}.json"

    def get(self, digest: str, model_id: str) -> list[PhoneSegment] | None:
        """The cached segments, or None when absent or unreadable (then recomputed)."""
        if not digest:
            return None
        path = self.path(digest, model_id)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("version") != _VERSION:
                return None
            return [PhoneSegment(str(n), float(a), float(b)) for n, a, b in data["segments"]]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("phoneme_cache_unreadable", path=str(path), reason=str(exc))
            return None

    def put(self, digest: str, model_id: str, segments: list[PhoneSegment]) -> None:
        """Store the segments; a cache that cannot be written is logged, never fatal."""
        if not digest:
            return
        path = self.path(digest, model_id)
        payload = {
            "version": _VERSION,
            "model": model_id,
            "segments": [[s.name, round(s.start_s, 4), round(s.end_s, 4)] for s in segments],
        }
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with atomic_file(path) as handle:
                json.dump(payload, handle, ensure_ascii=False)
        except OSError as exc:
            log.warning("phoneme_cache_unwritable", path=str(path), reason=str(exc))


def recognize_cached(
    recognizer, samples, *, digest: str, cache: PhonemeCache | None
) -> tuple[list[PhoneSegment], bool]:
    """Phones of ``samples`` from the cache when this audio and model were seen, else the model.

    Returns the segments and whether they came from the cache.
    """
    return cached_segments(cache, digest, recognizer.identity, lambda: recognizer.recognize(samples))


def cached_segments(
    cache: PhonemeCache | None, digest: str, model_id: str, recognise: Callable[[], list[PhoneSegment]]
) -> tuple[list[PhoneSegment], bool]:
    """The cached segments of (``digest``, ``model_id``), else ``recognise()``'s, stored for next time;
    and whether they came from the cache."""
    if cache is not None:
        cached = cache.get(digest, model_id)
        if cached is not None:
            return cached, True
    segments = recognise()
    if cache is not None:
        cache.put(digest, model_id, segments)
    return segments, False
