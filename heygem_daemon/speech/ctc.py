"""CTC greedy decoding with frame timestamps (pure numpy, model-agnostic).

A CTC model emits one token (or the blank) per frame; the greedy path is the
arg-max per frame with repeats merged and blanks removed.  CTC outputs are
"spiky": a phone usually owns one or two frames surrounded by blanks, so the
segments are widened afterwards (:func:`fill_gaps`) to reach the next phone,
which is what mouth shapes need: a shape that lasts until the next one starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np

#: a phone is held at most this long after its spike; beyond it is a pause
MAX_PHONE_S = 0.3


@dataclass(frozen=True)
class PhoneSegment:
    """One recognised phone: an IPA token (as the model's vocabulary spells it) and its time."""

    name: str
    start_s: float
    end_s: float


def greedy_ids(logits: np.ndarray) -> np.ndarray:
    """Best token per frame from (frames, vocab) logits."""
    return np.asarray(logits).argmax(axis=-1).astype(np.int32)


def ctc_segments(
    ids: np.ndarray,
    frame_s: float,
    *,
    blank_id: int,
    tokens: Mapping[int, str],
    skip_ids: Iterable[int] = (),
) -> list[PhoneSegment]:
    """Runs of equal ids → timed tokens; blanks and ``skip_ids`` (word delimiter,
    specials) separate runs but yield nothing, and ids without a token are dropped.

    Two equal tokens separated by a blank are two phones (CTC's rule); a run of
    frames [a, b) becomes ``start_s = a * frame_s``, ``end_s = b * frame_s``.
    """
    ids = np.asarray(ids).reshape(-1)
    if ids.size == 0:
        return []
    skip = set(skip_ids) | {blank_id}
    change = np.flatnonzero(np.diff(ids)) + 1
    starts = np.concatenate([[0], change])
    stops = np.concatenate([change, [ids.size]])
    segments = []
    for start, stop in zip(starts.tolist(), stops.tolist()):
        token_id = int(ids[start])
        name = tokens.get(token_id)
        if token_id in skip or not name or not name.strip():
            continue
        segments.append(PhoneSegment(name, start * frame_s, stop * frame_s))
    return segments


def fill_gaps(
    segments: list[PhoneSegment], *, max_s: float = MAX_PHONE_S, end_s: float = math.inf
) -> list[PhoneSegment]:
    """Each phone extended to the next one's start, but held at most ``max_s`` seconds
    and never past ``end_s`` (the audio's end)."""
    filled = []
    for index, seg in enumerate(segments):
        limit = min(end_s, seg.start_s + max(max_s, seg.end_s - seg.start_s))
        following = segments[index + 1].start_s if index + 1 < len(segments) else limit
        end = max(min(seg.end_s, end_s), min(following, limit))
        filled.append(PhoneSegment(seg.name, seg.start_s, end))
    return filled
